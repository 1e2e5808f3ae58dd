-- Confirm a pending part of a multi-partition hold once every part was reserved: it becomes
-- active and its lines count until the hold's expires_at.
--
-- KEYS and ARGV[1..7]: the transition layout (see hold_commit.lua and includes/transition.lua).
--
-- Replies: {"ok", "active"} | {"replayed", status} | {"not_found"} | {"keys_mismatch"}
--          | {"expired"} (the pending deadline passed) | {"invalid", status}

local rcall = redis.call
--!include clock.lua
--!include position.lua
--!include channels.lua
--!include emit.lua
--!include hold.lua
--!include transition.lua

local h, keys = transition_begin()
if not h then return keys end
if h.status ~= 'pending' then return {'invalid', h.status} end

local expires_at = h.expires_at
for _, line in ipairs(h.lines_t) do
  rcall('ZADD', keys[line.sku][2], 'XX', expires_at,
        line_member(ctx.hold_id, line.location, line.quantity))
end
rcall('HSET', hold_key, 'status', 'active', 'count_until', expires_at, 'updated_at', ctx.now)
rcall('ZADD', expiry_key, 'XX', expires_at, ctx.hold_id)
return transition_done('active')
