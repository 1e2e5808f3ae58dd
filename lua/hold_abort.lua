-- Abort a pending part of a multi-partition hold whose other parts could not be reserved:
-- its units return and the record is deleted, so the same hold id can be tried again.
--
-- KEYS and ARGV[1..7]: the transition layout (see hold_commit.lua and includes/transition.lua).
--
-- Replies: {"ok", "aborted"} | {"replayed", status} | {"not_found"} | {"keys_mismatch"}
--          | {"expired"} | {"invalid", status}

local rcall = redis.call
--!include transition.lua

local h, keys = transition_begin('pending')
if not h then return keys end

hold_apply(ctx, h, keys, 'hold.aborted', false,
           function(p, q) p.held = p.held - q end)
rcall('DEL', hold_key)
rcall('ZREM', expiry_key, ctx.hold_id)
return {'ok', 'aborted'}
