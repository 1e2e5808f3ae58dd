#!lua flags=no-writes
-- Read a hold record as the store's clock sees it: an active or pending record whose lines
-- stopped counting (the reaper has not marked it yet) gets the field "lapsed" = "1", so the
-- service never compares count_until with its own clock; a pending part whose deadline passed
-- gets "overdue" = "1" (it needs settling, HoldService.settle). Read-only.
--
-- KEYS[1] hold record os:{P}:hold:<id>
-- ARGV[1] clock offset, ms (0; see includes/clock.lua)
--
-- Reply: the record as HGETALL gives it (flat field, value list; empty when there is none)

local rcall = redis.call
--!include clock.lua

local flat = rcall('HGETALL', KEYS[1])
local status, count_until, deadline
for i = 1, #flat, 2 do
  if flat[i] == 'status' then status = flat[i + 1]
  elseif flat[i] == 'count_until' then count_until = tonumber(flat[i + 1])
  elseif flat[i] == 'deadline' then deadline = tonumber(flat[i + 1]) end
end
local now = clock_now(ARGV[1])
if (status == 'active' or status == 'pending') and count_until and count_until <= now then
  flat[#flat + 1] = 'lapsed'
  flat[#flat + 1] = '1'
end
deadline = deadline or count_until
if status == 'pending' and deadline and deadline <= now then
  flat[#flat + 1] = 'overdue'
  flat[#flat + 1] = '1'
end
return flat
