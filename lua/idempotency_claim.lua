-- Claim an Idempotency-Key by itself, in the slot of the change it guards, for a request whose
-- change is not one script: a multi-partition hold (before its parts run, in the home
-- partition), a stock-events batch (the first event's partition), and a request that failed
-- before its script ran (claim and store its error response in one step).
--
-- KEYS[1] idempotency record   os:{P}:idem:<digest> | os:{cfg}:idem:<digest>
-- ARGV[1] clock offset, ms (0; see includes/clock.lua): the lease runs on the store's clock
-- ARGV[2] HTTP status to store at once ("" to claim only)
-- ARGV[3] response body (with ARGV[2])
-- ARGV[4..6] the claim: fingerprint, lease ms, retention s (includes/idempotency.lua)
--
-- Replies: {"claimed"}                     run the request, then idempotency_complete
--          {"stored"}                      claimed and stored ARGV[2..3]
--          {"idem", "done", status, body}  replay the stored response
--          {"idem", "reused"} | {"idem", "in_use"}

--!include clock.lua
--!include idempotency.lua

local stop = idem_claim(clock_now(ARGV[1]))
if stop then return stop end
if ARGV[2] == '' then return {'claimed'} end
return idem_complete(ARGV[2], ARGV[3])
