-- Release an active or committed hold (cancelled): its units return to available.
--
-- KEYS and ARGV[1..7]: the transition layout (see hold_commit.lua and includes/transition.lua).
--
-- The last key and the last three ARGV: the Idempotency-Key claim (includes/idempotency.lua),
-- taken before anything else; its replies {"idem", ...} come back unchanged.
--
-- Replies: {"ok", "released"} | {"replayed", status} | {"not_found"} | {"keys_mismatch"}
--          | {"expired"} | {"invalid", status}

local rcall = redis.call
--!include keyed.lua

local h, keys = keyed_begin()
if not h then return keys end
if h.status == 'active' then
  hold_apply(ctx, h, keys, 'hold.released', false,
             function(p, q) p.held = p.held - q end)
elseif h.status == 'committed' then
  hold_apply(ctx, h, keys, 'hold.released', false,
             function(p, q) p.committed = p.committed - q end)
else
  return {'invalid', h.status}
end
rcall('HSET', hold_key, 'status', 'released', 'updated_at', ctx.now)
rcall('ZREM', expiry_key, ctx.hold_id)
rcall('EXPIRE', hold_key, terminal_ttl)
return transition_done('released')
