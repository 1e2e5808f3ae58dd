-- Register or update one location or channel, and bump the configuration version so every
-- service process notices and reloads its cached copy.
--
-- KEYS[1] config hash          os:{cfg}:locations or os:{cfg}:channels
-- KEYS[2] config version       os:{cfg}:version
-- KEYS[3] Idempotency-Key record os:{cfg}:idem:<digest> (includes/idempotency.lua)
-- ARGV[1] id
-- ARGV[2] JSON document
-- ARGV[3] clock offset, ms (0; see includes/clock.lua): the claim's lease
-- ARGV[4..6] the Idempotency-Key claim (includes/idempotency.lua), taken first
--
-- Reply: the new configuration version (integer), or the claim's {"idem", ...}

local rcall = redis.call
--!include clock.lua
--!include idempotency.lua

local stop = idem_claim(clock_now(ARGV[3]))
if stop then return stop end
rcall('HSET', KEYS[1], ARGV[1], ARGV[2])
return rcall('INCR', KEYS[2])
