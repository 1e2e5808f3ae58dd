#!lua flags=no-writes
-- Read the positions of several skus of one partition, with expired hold lines excluded.
-- Read-only: safe on replicas, never changes anything.
--
-- KEYS[2i - 1], KEYS[2i]  for the i-th sku asked:
--         position hash        os:{P}:pos:<sku>
--         hold lines by expiry os:{P}:hx:<sku>
--
-- ARGV[1] now, ms
-- ARGV[2..] locations to report (none: every location the sku has a position at)
--
-- Reply: one array per sku, in KEYS order, flat:
--   {location, on_hand, held, committed, safety_stock, available, location, ...}
--   (a location asked for without a position is left out)

local rcall = redis.call
--!include position.lua

local now = tonumber(ARGV[1])
local wanted = {}
for i = 2, #ARGV do wanted[#wanted + 1] = ARGV[i] end

local out = {}
for i = 1, #KEYS, 2 do
  local pos_key, hx_key = KEYS[i], KEYS[i + 1]
  local expired = nil
  local row = {}
  local locs = wanted
  if #wanted == 0 then locs = rcall('HKEYS', pos_key) end
  for _, loc in ipairs(locs) do
    local p = pos_read(pos_key, loc)
    if p then
      if expired == nil then expired = expired_by_location(hx_key, now) end
      local v = pos_view(p, expired[loc])
      row[#row + 1] = loc
      row[#row + 1] = v.on_hand
      row[#row + 1] = v.held
      row[#row + 1] = v.committed
      row[#row + 1] = v.safety
      row[#row + 1] = v.available
    end
  end
  out[#out + 1] = row
end
return out
