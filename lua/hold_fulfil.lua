-- Fulfil a committed hold (shipped or picked up): on_hand and committed go down by its units
-- and the hold is done.
--
-- KEYS and ARGV[1..7]: the transition layout (see hold_commit.lua and includes/transition.lua).
--
-- The last key and the last three ARGV: the Idempotency-Key claim (includes/idempotency.lua),
-- taken before anything else; its replies {"idem", ...} come back unchanged.
--
-- Replies: {"ok", "fulfilled"} | {"replayed", status} | {"not_found"} | {"keys_mismatch"}
--          | {"expired"} | {"invalid", status}

local rcall = redis.call
--!include keyed.lua

local h, keys = keyed_begin('committed')
if not h then return keys end

hold_apply(ctx, h, keys, 'hold.fulfilled', false,
           function(p, q) p.on_hand = p.on_hand - q; p.committed = p.committed - q end)
rcall('HSET', hold_key, 'status', 'fulfilled', 'updated_at', ctx.now)
rcall('EXPIRE', hold_key, terminal_ttl)
return transition_done('fulfilled')
