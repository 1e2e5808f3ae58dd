#!lua flags=no-writes
-- Read the supply lines of several skus of one partition, with what is promised from each
-- (lapsed holds' promises excluded). Read-only: safe on replicas, never changes anything.
--
-- KEYS[2i - 1], KEYS[2i]  for the i-th sku asked:
--         supply lines   os:{P}:sup:<sku>
--         promises       os:{P}:px:<sku>
--
-- ARGV[1] clock offset, ms (0; see includes/clock.lua)
--
-- Reply: {now ms, JSON [[line, ...] per sku in KEYS order]}; a line is
--   {location, supply_id, type, quantity, eta (ms), reference, promised, free}, earliest eta
--   first (includes/promise_read.lua supply_lines()).

local rcall = redis.call
--!include clock.lua
--!include promise_read.lua

local now = clock_now(ARGV[1])
local out = {}
for i = 1, #KEYS, 2 do
  local lines = supply_lines(KEYS[i], KEYS[i + 1], now)
  local rows = {}
  for j, l in ipairs(lines) do
    rows[j] = {location = l.location, supply_id = l.supply_id, type = l.type,
               quantity = l.quantity, eta = l.eta, reference = l.reference,
               promised = l.promised, free = l.free}
  end
  out[#out + 1] = rows
end
return {now, cjson.encode(out)}
