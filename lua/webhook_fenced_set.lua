-- A webhook deliverer's write (its cursor, a disable, the attempts it made), fenced: applied
-- only while the writer still holds the deliverers' lease and the subscription is at the
-- epoch the writer read (an admin change bumps it), so a deliverer that lost its lease, or
-- that delivers a subscription changed since, writes nothing (app/webhooks/registry.py).
--
-- KEYS[1] deliverers' lease  os:{wh}:lease
-- KEYS[2] subscription hash  os:{wh}:sub:<id>
-- KEYS[3] attempts log       os:{wh}:log:<id>
--
-- ARGV[1] the writer's lease token
-- ARGV[2] the subscription's epoch the writer read
-- ARGV[3] attempts kept in the log (its newest entries)
-- ARGV[4] n, the attempts to log
-- ARGV[5 .. 4 + n] the attempts since the last write (JSON), oldest first
-- ARGV[5 + n ..] field, value, ...: what to write in the subscription
--
-- Replies: 1 written | 0 not the lease holder | -1 the subscription changed (or is gone)

local rcall = redis.call

if rcall('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if rcall('HGET', KEYS[2], 'epoch') ~= ARGV[2] then return -1 end
local n = tonumber(ARGV[4])
if n > 0 then
  rcall('LPUSH', KEYS[3], unpack(ARGV, 5, 4 + n))
  rcall('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
end
for i = 5 + n, #ARGV, 2 do rcall('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
