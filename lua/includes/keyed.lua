-- The start of a keyed hold transition (commit, fulfil, release, extend): the Idempotency-Key
-- claim first, in the hold's home slot (its replies {"idem", ...} come back unchanged), then
-- transition_begin(status). Returns (hold, keys) or (nil, reply).
--!include transition.lua
--!include idempotency.lua

local function keyed_begin(status)
  local stop = idem_claim(ctx.now)
  if stop then return nil, stop end
  return transition_begin(status)
end
