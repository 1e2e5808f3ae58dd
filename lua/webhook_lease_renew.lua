-- Renew the webhook deliverers' lease, if the caller still holds it (app/webhooks/).
--
-- KEYS[1] deliverers' lease  os:{wh}:lease
--
-- ARGV[1] the caller's lease token
-- ARGV[2] the lease's new time to live, ms
--
-- Replies: 1 renewed | 0 not the holder (it lapsed, or another deliverer took it)

local rcall = redis.call

if rcall('GET', KEYS[1]) ~= ARGV[1] then return 0 end
rcall('PEXPIRE', KEYS[1], ARGV[2])
return 1
