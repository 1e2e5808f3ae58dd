#!lua flags=no-writes
-- The reaper's due scan of one partition: holds whose lines stopped counting by the store's
-- clock (hold_expire.lua re-checks each one). Read-only.
--
-- KEYS[1] expiry index os:{P}:expiry
-- ARGV[1] clock offset, ms (0; see includes/clock.lua)
-- ARGV[2] at most this many hold ids
--
-- Reply: hold ids, the longest lapsed first

local rcall = redis.call
--!include clock.lua

return rcall('ZRANGEBYSCORE', KEYS[1], '-inf', clock_now(ARGV[1]), 'LIMIT', 0, ARGV[2])
