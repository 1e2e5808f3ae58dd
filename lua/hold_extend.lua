-- Extend an active hold: it now expires ARGV[8] ms from now (the store's clock).
--
-- KEYS and ARGV[1..7]: the transition layout (see hold_commit.lua and includes/transition.lua).
-- ARGV[8] TTL from now, ms
--
-- The last key and the last three ARGV: the Idempotency-Key claim (includes/idempotency.lua),
-- taken before anything else; its replies {"idem", ...} come back unchanged.
--
-- Replies: {"ok", "active"} | {"replayed", status} | {"not_found"} | {"keys_mismatch"}
--          | {"expired"} | {"invalid", status}

local rcall = redis.call
--!include keyed.lua

local h, keys = keyed_begin('active')
if not h then return keys end

local expires_at = ctx.now + tonumber(ARGV[8])
local orders = hold_orders(h)
for i, line in ipairs(h.lines_t) do
  rcall('ZADD', keys[line.sku][2], 'XX', expires_at, hold_line_member(h, orders, ctx.hold_id, i))
end
promise_rescore(ctx.hold_id, h, expires_at)
rcall('HSET', hold_key, 'expires_at', expires_at, 'count_until', expires_at, 'updated_at', ctx.now)
rcall('ZADD', expiry_key, 'XX', expires_at, ctx.hold_id)
return transition_done('active')
