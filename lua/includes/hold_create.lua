-- The first step of a hold create (hold_reserve.lua, hold_backorder.lua), before any other
-- work: the Idempotency-Key claim checked, then a retry of a create that got through (its
-- claim's lease ran out) finds the record. nil: go on; else the reply the script returns at
-- once: the claim's answer (idempotency.lua), having changed nothing, or {"exists", status},
-- with the claim taken.
-- The claim is checked here and written with the script's outcome: a created hold writes it
-- with its response (idem_finish), every other reply takes it first (hold_create_refuse).
--!include idempotency.lua

local function hold_create_start(hold_key, now)
  local stop = idem_check(now)
  if stop then return stop end
  local existing = redis.call('HGET', hold_key, 'status')
  if existing then
    idem_take(now)
    return {'exists', existing}
  end
  return nil
end

-- A create that reserves nothing replies `reply` with the claim taken (the service stores
-- its response in it: idempotency_complete.lua).
local function hold_create_refuse(now, reply)
  idem_take(now)
  return reply
end
