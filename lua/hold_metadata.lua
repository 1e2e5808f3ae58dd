-- Update a hold's metadata (PATCH /v1/holds/{id}), Stripe's way: each given key is set to its
-- value, a key given as "" is removed, the others stay. Written on the hold's home record only.
--
-- KEYS[1] hold record os:{P}:hold:<id> (the home part)
-- ARGV[1] clock offset, ms (0; see includes/clock.lua)
-- ARGV[2] updates JSON object {key: value}
-- ARGV[3] at most this many keys after the update
-- The last key and the last three ARGV: the Idempotency-Key claim (includes/idempotency.lua),
-- taken before anything else; its replies {"idem", ...} come back unchanged.
--
-- Replies: {"ok"} | {"not_found"} | {"too_many", keys after the update}; nothing changes
--          unless "ok"

local rcall = redis.call
--!include clock.lua
--!include idempotency.lua

local now = clock_now(ARGV[1])
local stop = idem_claim(now)
if stop then return stop end
local raw = rcall('HGET', KEYS[1], 'metadata')
if not rcall('HGET', KEYS[1], 'status') then return {'not_found'} end
local metadata = raw and cjson.decode(raw) or {}
for key, value in pairs(cjson.decode(ARGV[2])) do
  if value == '' then metadata[key] = nil else metadata[key] = value end
end
local n = 0
for _ in pairs(metadata) do n = n + 1 end
if n > tonumber(ARGV[3]) then return {'too_many', n} end
if n == 0 then
  rcall('HDEL', KEYS[1], 'metadata')
else
  rcall('HSET', KEYS[1], 'metadata', cjson.encode(metadata))
end
rcall('HSET', KEYS[1], 'updated_at', now)
return {'ok'}
