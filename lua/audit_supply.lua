#!lua flags=no-writes
-- Read one partition's supply lines, promises and the hold records they name for
-- `omnistock audit`, in one atomic step (app/domain/audit_supply.py judges them).
-- Read-only: never changes anything.
--
-- KEYS[i]  for the i-th hold id of ARGV[1]: os:{P}:hold:<id>
-- KEYS[H + 2j - 1], KEYS[H + 2j]  for the j-th sku of ARGV[2] (H = number of hold ids):
--          os:{P}:sup:<sku>, os:{P}:px:<sku>
--
-- ARGV[1] hold ids JSON ["id", ...]
-- ARGV[2] skus JSON ["sku", ...]
-- ARGV[3] clock offset, ms (0; see includes/clock.lua)
--
-- Replies:
--   {"ok", JSON {"now": ms, "supply": {sku: [field, value, ...]},
--                "promises": {sku: [field, value, ...]},
--                "holds": {id: [status, promises JSON or false]}}}
--   {"stale", JSON {"holds": [id, ...], "skus": []}}  a promise names a hold the caller did not
--     pass: call again with it

local rcall = redis.call
--!include clock.lua

local ids = cjson.decode(ARGV[1])
local skus = cjson.decode(ARGV[2])
local now = clock_now(ARGV[3])
local given, holds = {}, {}
for i, id in ipairs(ids) do
  given[id] = true
  holds[id] = rcall('HMGET', KEYS[i], 'status', 'promises')
end
local supply, promises, missing = {}, {}, {}
for j, sku in ipairs(skus) do
  local base = #ids + 2 * (j - 1)
  supply[sku] = rcall('HGETALL', KEYS[base + 1])
  local flat = rcall('HGETALL', KEYS[base + 2])
  promises[sku] = flat
  for k = 1, #flat, 2 do
    local id = string.match(flat[k], '^([^|]*)|')
    if id and not given[id] then missing[#missing + 1] = id given[id] = true end
  end
end
if #missing > 0 then return {'stale', cjson.encode({holds = missing, skus = {}})} end
return {'ok', cjson.encode({now = now, supply = supply, promises = promises, holds = holds})}
