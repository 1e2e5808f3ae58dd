#!lua flags=no-writes
-- Read a hold record as the store's clock sees it (includes/hold_view.lua: "lapsed" and
-- "overdue" added where they apply). Read-only.
--
-- KEYS[1] hold record os:{P}:hold:<id>
-- ARGV[1] clock offset, ms (0; see includes/clock.lua)
--
-- Reply: the record as HGETALL gives it (flat field, value list; empty when there is none)

local rcall = redis.call
--!include clock.lua
--!include hold_view.lua

return hold_view(rcall('HGETALL', KEYS[1]), clock_now(ARGV[1]))
