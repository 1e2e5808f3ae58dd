-- The Idempotency-Key record of a keyed request (Stripe's semantics), kept in the slot of the
-- change it guards and claimed by that change's own script, so one primary decides a keyed
-- write and a failover keeps the record exactly when it keeps the change (docs/architecture.md,
-- "Never applied twice").

-- Every script that takes a keyed request includes this file; a keyed call passes the record
-- as its LAST key and the claim as its LAST three ARGV (app/domain/idempotency.py builds them,
-- `record_keys_args`); a call without a key passes neither (and pays nothing):
--   KEYS[#KEYS]   record  os:{P}:idem:<digest> (os:{cfg}:idem:<digest> for configuration), a
--                 hash: state (in_flight | done), fingerprint, lease_until, status, body
--   ARGV[#ARGV-2] request fingerprint (method, path, canonical body)
--   ARGV[#ARGV-1] lease, ms: how long an unfinished claim blocks others (a crashed worker's
--                 claim is taken over after it)
--   ARGV[#ARGV]   retention, s
-- The last key names a record only by its shape (`:idem:` right after the hash tag: no other
-- key has it, whatever a sku or location is called), so a call without one claims nothing.
local idem_key = KEYS[#KEYS]
local idem_fp, idem_lease, idem_ttl = '', 0, 0
if idem_key and string.find(idem_key, '}:idem:', 1, true)
    and string.match(idem_key, '^[^{]*{[^}]*}:idem:') then
  idem_fp, idem_lease, idem_ttl = ARGV[#ARGV - 2], tonumber(ARGV[#ARGV - 1]), ARGV[#ARGV]
end

-- May this request claim the key at `now` (the script's store time)? nil: go on (the key is
-- free or its claim's lease ran out, or no key); else the reply the script returns at once,
-- having changed nothing:
--   {"idem", "done", status, body}  replay the stored response
--   {"idem", "reused"}              same key, different request: 422
--   {"idem", "in_use"}              the first request is still running: 409
-- Nothing is written: idem_take() writes the claim, or idem_finish() the claim with its
-- response, later in the same script call.
local function idem_check(now)
  if idem_fp == '' then return nil end
  local rec = redis.call('HMGET', idem_key, 'state', 'fingerprint', 'lease_until', 'status', 'body')
  if rec[1] then
    if rec[2] ~= idem_fp then return {'idem', 'reused'} end
    if rec[1] == 'done' then return {'idem', 'done', rec[4], rec[5]} end
    if tonumber(rec[3]) > now then return {'idem', 'in_use'} end
  end
  return nil
end

-- Write the claim idem_check() let through: in flight until the lease runs out.
local function idem_take(now)
  if idem_fp == '' then return end
  redis.call('HSET', idem_key, 'state', 'in_flight', 'fingerprint', idem_fp,
             'lease_until', now + idem_lease)
  redis.call('EXPIRE', idem_key, idem_ttl)
end

-- Claim the key at `now`: idem_check(), then idem_take(). nil: go on (claimed, or no key);
-- else idem_check()'s reply.
local function idem_claim(now)
  local stop = idem_check(now)
  if stop then return stop end
  idem_take(now)
  return nil
end

-- Store the response in the claim this script call took (idem_claim() went on, so the record
-- is this request's); nothing without a key.
local function idem_store(status, body)
  if idem_fp == '' then return end
  redis.call('HSET', idem_key, 'state', 'done', 'status', status, 'body', body)
  redis.call('EXPIRE', idem_key, idem_ttl)
end

-- The claim idem_check() let through and its response, written at once: the record
-- idem_take() then idem_store() would leave (same fields, same order), in one HSET and one
-- EXPIRE instead of two of each. A script whose change answers for itself stores its
-- response with the change, and the request needs no completion call (hold_reserve.lua,
-- hold_backorder.lua: a created hold, in the deferred form IDEM_HOLD_CREATED that
-- app/domain/hold_render.py renders; a keyed create is one store round trip); every other
-- reply of such a script after idem_check() first takes the claim (idem_take()), so the
-- service completes it as before.
local function idem_finish(now, status, body)
  if idem_fp == '' then return end
  redis.call('HSET', idem_key, 'state', 'done', 'fingerprint', idem_fp,
             'lease_until', now + idem_lease, 'status', status, 'body', body)
  redis.call('EXPIRE', idem_key, idem_ttl)
end

-- The stored body of a created hold (POST /v1/holds, 201): this prefix, then the JSON array
-- [hold id, status, channel, reference, created_at, expires_at, lines JSON, metadata JSON or
-- "", promises JSON (hold_backorder.lua only)], which the service renders exactly as it
-- rendered the first response (app/domain/hold_render.py).
local IDEM_HOLD_CREATED = '\0hold_created\0'

-- Store the response of this request's claim, or give the claim up (status ""): the request
-- failed before it could change anything, so a retry must run it again.
-- Replies {"stored"} | {"released"} | {"not_claimed"} (the record is gone or another request's).
local function idem_complete(status, body)
  if redis.call('HGET', idem_key, 'fingerprint') ~= idem_fp then return {'not_claimed'} end
  if status == '' then
    redis.call('DEL', idem_key)
    return {'released'}
  end
  idem_store(status, body)
  return {'stored'}
end
