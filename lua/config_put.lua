-- Register, update or delete one location, channel or kit, keep the locations' geo index in
-- step with the location records, and bump the configuration version so every service
-- process notices and reloads its cached copy.
--
-- KEYS[1] config hash          os:{cfg}:locations, os:{cfg}:channels or os:{cfg}:kits
-- KEYS[2] config version       os:{cfg}:version
-- KEYS[3] geo index            os:{cfg}:geo (GEOADD set: member location id)
-- KEYS[4] Idempotency-Key record os:{cfg}:idem:<digest> (includes/idempotency.lua)
-- ARGV[1] id
-- ARGV[2] JSON document ("" deletes the item)
-- ARGV[3] clock offset, ms (0; see includes/clock.lua): the claim's lease
-- ARGV[4] geo of the item: "" leave the index alone (channels, kits), "-" the location has no
--         coordinates (drop it from the index), "<lon> <lat>" (re)place it in the index; a
--         latitude beyond GEOADD's Web Mercator limit (|lat| > 85.05112878, valid for the API
--         and for the service's own distances) is left out of the index, never an error
--         after the write
-- ARGV[5..7] the Idempotency-Key claim (includes/idempotency.lua), taken first
--
-- Reply: the new configuration version (integer), or the claim's {"idem", ...}

local rcall = redis.call
--!include clock.lua
--!include idempotency.lua

local stop = idem_claim(clock_now(ARGV[3]))
if stop then return stop end
if ARGV[2] == '' then
  rcall('HDEL', KEYS[1], ARGV[1])
else
  rcall('HSET', KEYS[1], ARGV[1], ARGV[2])
end
local geo = ARGV[4]
if geo == '-' then
  rcall('ZREM', KEYS[3], ARGV[1])
elseif geo ~= '' then
  local lon, lat = string.match(geo, '^(%S+) (%S+)$')
  if math.abs(tonumber(lat)) <= 85.05112878 then
    rcall('GEOADD', KEYS[3], lon, lat, ARGV[1])
  else
    rcall('ZREM', KEYS[3], ARGV[1])
  end
end
return rcall('INCR', KEYS[2])
