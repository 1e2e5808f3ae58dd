-- Release the webhook deliverers' lease, if the caller holds it (a stopping deliverer), so
-- another takes over at once rather than when it lapses (app/webhooks/).
--
-- KEYS[1] deliverers' lease  os:{wh}:lease
--
-- ARGV[1] the caller's lease token
--
-- Replies: 1 released | 0 not the holder

local rcall = redis.call

if rcall('GET', KEYS[1]) == ARGV[1] then return rcall('DEL', KEYS[1]) end
return 0
