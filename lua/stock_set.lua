-- Set a position's absolute on_hand (and optionally safety_stock) from ERP/WMS, and emit its
-- event (plus a `shortfall` event if on_hand is now below held + committed). Held and
-- committed units are untouched.
--
-- KEYS[1] position hash               os:{P}:pos:<sku>
-- KEYS[2] open hold lines             os:{P}:hx:<sku> (includes/position.lua line_member)
-- KEYS[3] event stream                os:{P}:events
-- KEYS[4] skus of partition           os:{P}:skus
-- KEYS[5] operation marker            os:{P}:op:<digest>
--
-- ARGV[1] clock offset, ms (0; see includes/clock.lua)
-- ARGV[2] sku
-- ARGV[3] location
-- ARGV[4] on_hand (integer, may be negative)
-- ARGV[5] safety_stock ("" keeps the current value; 0 for a new position)
-- ARGV[6] event retention, ms (MINID trimming)
-- ARGV[7] seconds to keep the operation marker (0: no marker)
-- ARGV[8] channels JSON {id: [low_stock_threshold, [locations]]} that see the location
-- KEYS[6], ARGV[9..11]: the Idempotency-Key claim (includes/idempotency.lua), taken first
--
-- Replies: {"ok", on_hand, held, committed, safety_stock, available}
--          {"replayed", on_hand, held, committed, safety_stock, available}  (marker existed:
--           nothing changed; the current position)
--          {"idem", ...}  the claim's answer (includes/idempotency.lua): nothing changed

local rcall = redis.call
--!include clock.lua
--!include emit.lua
--!include shortfall.lua
--!include idempotency.lua

local pos_key, hx_key, stream_key, skus_key, marker_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = clock_now(ARGV[1])
local sku, location = ARGV[2], ARGV[3]
local min_id = clock_min_id(now, ARGV[6])
local marker_ttl = tonumber(ARGV[7])
local channels = cjson.decode(ARGV[8])
local stop = idem_claim(now)
if stop then return stop end

local function reply(kind, v)
  return {kind, v.on_hand, v.held, v.committed, v.safety, v.available}
end

local p = pos_read(pos_key, location) or {on_hand = 0, held = 0, committed = 0, safety = 0}
if marker_ttl > 0 and rcall('EXISTS', marker_key) == 1 then
  return reply('replayed', pos_view(p, expired_by_location(hx_key, now)[location]))
end

local before = track(channels, pos_key, hx_key, location, now)
p.on_hand = tonumber(ARGV[4])
if ARGV[5] ~= '' then p.safety = tonumber(ARGV[5]) end
pos_write(pos_key, location, p)
rcall('SADD', skus_key, sku)
local view = emit_change(stream_key, min_id, now, channels, 'stock.set', sku, location,
                         pos_key, hx_key, before)
check_shortfall(stream_key, min_id, now, sku, location, pos_key, hx_key, {})
if marker_ttl > 0 then rcall('SET', marker_key, '1', 'EX', marker_ttl) end
return reply('ok', view)
