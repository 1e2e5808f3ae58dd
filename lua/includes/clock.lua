-- The one rule for "now" (issue 11: one clock). Every decision by time (expiry, TTLs, leases,
-- event `at`, MINID trimming) uses the store's clock, read here with TIME: never a service
-- host's. Scripts replicate by their effects (Valkey 8 / Redis 7), so TIME is allowed, and it
-- is fixed for the whole run of a script.
-- `offset` (an ARGV, ms) is always "0" from the service (app/domain/clock.py StoreClock);
-- only in-process tests move it (ManualClock) to play time forward. No environment variable
-- or HTTP input can set it.
-- The seconds of the last TIME read and their ms, a pure memo (the library's state between
-- calls, app/store/functions.py): a text read as a number costs a strtod (~1,300
-- instructions), and the seconds change once a second.
local CLOCK_SECONDS = {}

local function clock_now(offset)
  local t = redis.call('TIME')
  local m = CLOCK_SECONDS
  if m[1] ~= t[1] then m[1], m[2] = t[1], tonumber(t[1]) * 1000 end
  local now = m[2] + math.floor(tonumber(t[2]) / 1000)
  if offset == '0' then return now end
  return now + (tonumber(offset) or 0)
end

-- The oldest event id a stream keeps (MINID), `retention_ms` before `now`: a number (the store
-- writes it as the integer it is; tostring() here would cost a sprintf).
local function clock_min_id(now, retention_ms)
  return math.max(0, now - tonumber(retention_ms))
end
