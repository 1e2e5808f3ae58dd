-- Commit an active hold (checkout completed): its units move from held to committed and it
-- no longer expires.
--
-- KEYS and ARGV[1..7]: the transition layout (includes/transition.lua):
-- KEYS[1] os:{P}:hold:<id>, KEYS[2] os:{P}:expiry, KEYS[3] os:{P}:events,
-- KEYS[4] os:{P}:op:<digest>, KEYS[5..] os:{P}:pos:<sku>, os:{P}:hx:<sku> per sku.
-- ARGV[1] clock offset ms (0), ARGV[2] hold id, ARGV[3] event retention ms, ARGV[4] finished-hold
-- retention s, ARGV[5] skus JSON, ARGV[6] operation marker retention s (0: no marker),
-- ARGV[7] channels JSON {id: [low_stock_threshold, [locations]]}.
--
-- The last key and the last three ARGV: the Idempotency-Key claim (includes/idempotency.lua),
-- taken before anything else; its replies {"idem", ...} come back unchanged.
--
-- Replies: {"ok", "committed"} | {"replayed", status} | {"not_found"} | {"keys_mismatch"}
--          | {"expired"} (it had lapsed; now marked expired) | {"invalid", status}

local rcall = redis.call
--!include keyed.lua

local h, keys = keyed_begin('active')
if not h then return keys end

hold_apply(ctx, h, keys, 'hold.committed', true,
           function(p, q) p.held = p.held - q; p.committed = p.committed + q end)
rcall('HSET', hold_key, 'status', 'committed', 'updated_at', ctx.now)
rcall('ZREM', expiry_key, ctx.hold_id)
return transition_done('committed')
