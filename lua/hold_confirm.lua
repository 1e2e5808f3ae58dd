-- Confirm a pending part of a multi-partition hold: it becomes active and its lines, and the
-- units it promised from supply lines (a backorder hold's px entries: the caller passes their
-- keys, includes/promise.lua), count until the hold's expires_at. On the HOME part this is
-- the hold's decision (its commit point): it succeeds only while the store's clock is before
-- the part's deadline; past it, the home part is rolled back here (units returned, promises
-- given back, marked expired) and the whole hold with it. Any other part is confirmed only
-- once its home part was (HoldService.settle), whatever its deadline.
--
-- KEYS and ARGV[1..7]: the transition layout (see hold_commit.lua and includes/transition.lua).
--
-- Replies: {"ok", "active"} | {"replayed", status} | {"not_found"} | {"keys_mismatch"}
--          | {"expired"} (the pending deadline passed) | {"invalid", status}

local rcall = redis.call
--!include transition.lua

local h, keys = transition_begin('pending')
if not h then return keys end
if hold_is_home(h, hold_key) and hold_deadline(h) <= ctx.now then
  hold_expire_now(ctx, hold_key, expiry_key, h, keys, terminal_ttl)
  return {'expired'}
end

local expires_at = tonumber(h.expires_at)
local orders = hold_orders(h)
for i, line in ipairs(h.lines_t) do
  rcall('ZADD', keys[line.sku][2], 'XX', expires_at, hold_line_member(h, orders, ctx.hold_id, i))
end
promise_rescore(ctx.hold_id, h, expires_at)
rcall('HSET', hold_key, 'status', 'active', 'count_until', expires_at, 'updated_at', ctx.now)
rcall('HDEL', hold_key, 'deadline')
rcall('ZADD', expiry_key, 'XX', expires_at, ctx.hold_id)
return transition_done('active')
