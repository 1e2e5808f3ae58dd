#!lua flags=no-writes
-- Read the positions of several skus of one partition, with expired hold lines excluded.
-- Read-only: safe on replicas, never changes anything.
--
-- KEYS[2i - 1], KEYS[2i]  for the i-th sku asked:
--         position hash        os:{P}:pos:<sku>
--         hold lines by expiry os:{P}:hx:<sku>
--
-- ARGV[1] clock offset, ms (0; see includes/clock.lua)
-- ARGV[2..] locations to report (none: every location the sku has a position at)
--
-- Reply: one array per sku, in KEYS order, flat:
--   {location, on_hand, held, committed, safety_stock, available, location, ...}
--   (a location asked for without a position is left out)

local rcall = redis.call
--!include clock.lua
--!include position.lua

local now = clock_now(ARGV[1])
local wanted = {}
for i = 2, #ARGV do wanted[#wanted + 1] = ARGV[i] end

-- One HMGET (or HGETALL) per sku, not an HGET per location: the call, not the command, is
-- what costs in a script.
local out = {}
for i = 1, #KEYS, 2 do
  local pos_key, hx_key = KEYS[i], KEYS[i + 1]
  local locs, values
  if #wanted == 0 then
    local flat = rcall('HGETALL', pos_key)
    locs, values = {}, {}
    for j = 1, #flat, 2 do
      locs[#locs + 1] = flat[j]
      values[#values + 1] = flat[j + 1]
    end
  else
    locs, values = wanted, rcall('HMGET', pos_key, unpack(wanted))
  end
  local expired = nil
  local row = {}
  for j = 1, #locs do
    local v = values[j]
    if v then
      if expired == nil then expired = expired_by_location(hx_key, now) end
      local o, h, c, s = string.match(v, POS_PATTERN)
      local lapsed = expired[locs[j]] or 0
      row[#row + 1] = locs[j]
      row[#row + 1] = tonumber(o)
      row[#row + 1] = h - lapsed
      row[#row + 1] = tonumber(c)
      row[#row + 1] = tonumber(s)
      row[#row + 1] = pos_available(o, h, lapsed, c, s)
    end
  end
  out[#out + 1] = row
end
return out
