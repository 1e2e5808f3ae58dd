-- Register or update one location or channel, and bump the configuration version so every
-- service process notices and reloads its cached copy.
--
-- KEYS[1] config hash          os:{cfg}:locations or os:{cfg}:channels
-- KEYS[2] config version       os:{cfg}:version
-- ARGV[1] id
-- ARGV[2] JSON document
--
-- Reply: the new configuration version (integer)

local rcall = redis.call
rcall('HSET', KEYS[1], ARGV[1], ARGV[2])
return rcall('INCR', KEYS[2])
