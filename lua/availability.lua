#!lua flags=no-writes
-- Read the positions of several skus of one partition, with expired hold lines excluded, and
-- (ARGV[2] "1") what their supply lines add: a product page or a partition of a batch in one
-- call. Read-only: safe on replicas, never changes anything.
--
-- KEYS[n(i - 1) + 1 .. n i] for the i-th sku asked, n = 2 (ARGV[2] "0") or 4 (ARGV[2] "1"):
--         position hash        os:{P}:pos:<sku>
--         hold lines by expiry os:{P}:hx:<sku>
--         supply lines         os:{P}:sup:<sku>   (n = 4 only)
--         promises             os:{P}:px:<sku>    (n = 4 only)
--
-- ARGV[1] clock offset, ms (0; see includes/clock.lua)
-- ARGV[2] "1": read the supply lines too; "0": positions only
-- ARGV[3..] locations to report (none: every location the sku has a position at); they are
--           also the scope of `incoming`
--
-- Reply: one item per sku, in KEYS order. A row, flat:
--   {location, on_hand, held, committed, safety_stock, available, location, ...}
--   (a location asked for without a position is left out);
-- with ARGV[2] "1" the item is {row, incoming, next eta ms (0: none)}: the unpromised units of
--   the sku's supply lines at the locations asked and the earliest eta of one that has some
--   (includes/promise_read.lua supply_incoming()).

local rcall = redis.call
--!include clock.lua
--!include position.lua
--!include promise_read.lua

local now = clock_now(ARGV[1])
local supply = ARGV[2] == '1'
local wanted = {}
for i = 3, #ARGV do wanted[#wanted + 1] = ARGV[i] end
local scope = nil  -- the set of `wanted` (nil: every location), made when a sku has supply

-- One HMGET (or HGETALL) per sku, not an HGET per location: the call, not the command, is
-- what costs in a script.
local out = {}
for i = 1, #KEYS, supply and 4 or 2 do
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
  if supply then
    local lines = supply_lines(KEYS[i + 2], KEYS[i + 3], now)
    local incoming, eta = 0, 0
    if #lines > 0 then
      if scope == nil and #wanted > 0 then
        scope = {}
        for j = 1, #wanted do scope[wanted[j]] = true end
      end
      incoming, eta = supply_incoming(lines, scope)
    end
    out[#out + 1] = {row, incoming, eta}
  else
    out[#out + 1] = row
  end
end
return out
