-- The first step of a hold create (hold_reserve.lua, hold_backorder.lua), before any other
-- work: the Idempotency-Key claim, then a retry of a create that got through (its claim's
-- lease ran out) finds the record. nil: go on; else the reply the script returns at once,
-- having changed nothing: the claim's answer (idempotency.lua) or {"exists", status}.
--!include idempotency.lua

local function hold_create_start(hold_key, now)
  local stop = idem_claim(now)
  if stop then return stop end
  local existing = redis.call('HGET', hold_key, 'status')
  if existing then return {'exists', existing} end
  return nil
end
