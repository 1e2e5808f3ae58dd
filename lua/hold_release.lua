-- Release an active or committed hold (cancelled): its units return to available.
--
-- KEYS and ARGV[1..6]: the transition layout (see hold_commit.lua and includes/transition.lua).
--
-- Replies: {"ok", "released"} | {"replayed", status} | {"not_found"} | {"keys_mismatch"}
--          | {"expired"} | {"invalid", status}

local rcall = redis.call
--!include position.lua
--!include emit.lua
--!include hold.lua
--!include transition.lua

local h, keys = transition_begin()
if not h then return keys end
if h.status == 'active' then
  hold_apply(h, hold_id, keys, now, stream_key, min_id, 'hold.released', true,
             function(p, q) p.held = p.held - q end)
elseif h.status == 'committed' then
  hold_apply(h, hold_id, keys, now, stream_key, min_id, 'hold.released', false,
             function(p, q) p.committed = p.committed - q end)
else
  return {'invalid', h.status}
end
rcall('HSET', hold_key, 'status', 'released', 'updated_at', now)
rcall('ZREM', expiry_key, hold_id)
rcall('EXPIRE', hold_key, terminal_ttl)
return transition_done('released')
