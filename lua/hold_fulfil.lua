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
--!include transition.lua
--!include idempotency.lua

local stop = idem_claim(ctx.now)  -- the Idempotency-Key record, in the hold's home slot
if stop then return stop end
local h, keys = transition_begin()
if not h then return keys end
if h.status ~= 'committed' then return {'invalid', h.status} end

hold_apply(ctx, h, keys, 'hold.fulfilled', false, true,
           function(p, q) p.on_hand = p.on_hand - q; p.committed = p.committed - q end)
rcall('HSET', hold_key, 'status', 'fulfilled', 'updated_at', ctx.now)
rcall('EXPIRE', hold_key, terminal_ttl)
return transition_done('fulfilled')
