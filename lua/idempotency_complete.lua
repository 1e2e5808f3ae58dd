-- Store the response of a claimed request in its record (the slot of the change it guards),
-- or give the claim up.
--
-- KEYS[1] idempotency record   os:{P}:idem:<digest> | os:{cfg}:idem:<digest>
-- ARGV[1] HTTP status, or "" to give the claim up (the request failed before it could change
--         anything, e.g. the store was unreachable, so a retry must run it again)
-- ARGV[2] response body
-- ARGV[3..5] the claim: fingerprint (must match), lease ms, retention s
--         (includes/idempotency.lua)
--
-- Replies: {"stored"} | {"released"} | {"not_claimed"} (the record is gone or someone else's)

--!include idempotency.lua

return idem_complete(ARGV[1], ARGV[2])
