-- Set a position's absolute on_hand (and optionally safety_stock) from ERP/WMS, and emit its
-- event. Held and committed units are untouched.
--
-- KEYS[1] position hash        os:{P}:pos:<sku>
-- KEYS[2] hold lines by expiry os:{P}:hx:<sku>
-- KEYS[3] event stream         os:{P}:events
-- KEYS[4] skus of partition    os:{P}:skus
-- KEYS[5] operation marker     os:{P}:op:<digest>
--
-- ARGV[1] now, ms
-- ARGV[2] sku
-- ARGV[3] location
-- ARGV[4] on_hand (integer, may be negative)
-- ARGV[5] safety_stock ("" keeps the current value; 0 for a new position)
-- ARGV[6] oldest event id to keep (ms)
-- ARGV[7] seconds to keep the operation marker (0: no marker)
--
-- Replies: {"ok", on_hand, held, committed, safety_stock, available}
--          {"replayed", on_hand, held, committed, safety_stock, available}  (marker existed:
--           nothing changed; the current position)

local rcall = redis.call
--!include position.lua
--!include emit.lua

local pos_key, hx_key, stream_key, skus_key, marker_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = tonumber(ARGV[1])
local sku, location = ARGV[2], ARGV[3]
local marker_ttl = tonumber(ARGV[7])

local function reply(kind, p)
  local view = pos_view(p, expired_by_location(hx_key, now)[location])
  return {kind, view.on_hand, view.held, view.committed, view.safety, view.available}
end

local p = pos_read(pos_key, location) or {on_hand = 0, held = 0, committed = 0, safety = 0}
if marker_ttl > 0 and rcall('EXISTS', marker_key) == 1 then return reply('replayed', p) end

p.on_hand = tonumber(ARGV[4])
if ARGV[5] ~= '' then p.safety = tonumber(ARGV[5]) end
pos_write(pos_key, location, p)
rcall('SADD', skus_key, sku)
local view = pos_view(p, expired_by_location(hx_key, now)[location])
emit(stream_key, ARGV[6], 'stock.set', sku, location, view, {})
if marker_ttl > 0 then rcall('SET', marker_key, '1', 'EX', marker_ttl) end
return {'ok', view.on_hand, view.held, view.committed, view.safety, view.available}
