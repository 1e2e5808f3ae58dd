-- Claim an Idempotency-Key for one request before it runs (Stripe's semantics).
--
-- KEYS[1] idempotency record   os:{idem:<d>}:<digest>  (hash: state, fingerprint,
--                                                        lease_until, status, body)
-- ARGV[1] request fingerprint (hash of method, path and body)
-- ARGV[2] clock offset, ms (0; see includes/clock.lua): the lease runs on the store's clock
-- ARGV[3] lease, ms: how long an unfinished claim blocks others (a crashed worker's claim
--         can be taken over after it)
-- ARGV[4] retention, seconds
--
-- Replies: {"claimed"}                 run the request, then idempotency_complete
--          {"done", status, body}      replay the stored response
--          {"reused"}                  same key, different request: 422
--          {"in_use"}                  the first request is still running: 409

local rcall = redis.call
--!include clock.lua
local key = KEYS[1]
local fingerprint, now, lease = ARGV[1], clock_now(ARGV[2]), tonumber(ARGV[3])

local rec = rcall('HMGET', key, 'state', 'fingerprint', 'lease_until', 'status', 'body')
if rec[1] then
  if rec[2] ~= fingerprint then return {'reused'} end
  if rec[1] == 'done' then return {'done', rec[4], rec[5]} end
  if tonumber(rec[3]) > now then return {'in_use'} end
end
rcall('HSET', key, 'state', 'in_flight', 'fingerprint', fingerprint, 'lease_until', now + lease)
rcall('EXPIRE', key, ARGV[4])
return {'claimed'}
