-- Reaper step: expire one hold if its lines stopped counting, returning its units. Safe to run
-- from every worker at once: the check and the change happen here, atomically.
--
-- KEYS and ARGV[1..7]: the transition layout (see hold_commit.lua and includes/transition.lua);
-- ARGV[6] is "0" (no marker).
--
-- Replies: {"expired"} (expired now) | {"not_due", status} (still counting, or already
--          finished: dropped from the expiry index) | {"not_found"} | {"keys_mismatch"}

local rcall = redis.call
--!include transition.lua

local h, keys = transition_begin()
if not h then
  if keys[1] == 'not_found' then rcall('ZREM', expiry_key, ctx.hold_id) end
  return keys
end
if h.status ~= 'active' and h.status ~= 'pending' then rcall('ZREM', expiry_key, ctx.hold_id) end
return {'not_due', h.status}
