-- The one rule for "now" (issue 11: one clock). Every decision by time (expiry, TTLs, leases,
-- event `at`, MINID trimming) uses the store's clock, read here with TIME: never a service
-- host's. Scripts replicate by their effects (Valkey 8 / Redis 7), so TIME is allowed, and it
-- is fixed for the whole run of a script.
-- `offset` (an ARGV, ms) is always "0" from the service (app/domain/clock.py StoreClock);
-- only in-process tests move it (ManualClock) to play time forward. No environment variable
-- or HTTP input can set it.
local function clock_now(offset)
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + (tonumber(offset) or 0)
end

-- The oldest event id a stream keeps (MINID), `retention_ms` before `now`.
local function clock_min_id(now, retention_ms)
  return tostring(math.max(0, now - tonumber(retention_ms)))
end
