-- Store the response of a claimed request, or give the claim up.
--
-- KEYS[1] idempotency record   os:{idem:<d>}:<digest>
-- ARGV[1] request fingerprint (must match the claim)
-- ARGV[2] HTTP status, or "" to give the claim up (the request failed before it could change
--         anything, e.g. the store was unreachable, so a retry must run it again)
-- ARGV[3] response body
-- ARGV[4] retention, seconds
--
-- Replies: {"stored"} | {"released"} | {"not_claimed"} (the record is gone or someone else's)

local rcall = redis.call
local key = KEYS[1]
if rcall('HGET', key, 'fingerprint') ~= ARGV[1] then return {'not_claimed'} end
if ARGV[2] == '' then
  rcall('DEL', key)
  return {'released'}
end
rcall('HSET', key, 'state', 'done', 'status', ARGV[2], 'body', ARGV[3])
rcall('EXPIRE', key, ARGV[4])
return {'stored'}
