-- A hold record as the store's clock sees it (hold_read.lua, hold_list.lua): `flat` is its
-- HGETALL reply; an active or pending record whose lines stopped counting (the reaper has not
-- marked it yet) gets the field "lapsed" = "1", so the service never compares count_until with
-- its own clock; a pending part whose deadline passed gets "overdue" = "1" (it needs settling,
-- HoldService.settle). Returns `flat`, extended.
local function hold_view(flat, now)
  local status, count_until, deadline
  for i = 1, #flat, 2 do
    if flat[i] == 'status' then status = flat[i + 1]
    elseif flat[i] == 'count_until' then count_until = tonumber(flat[i + 1])
    elseif flat[i] == 'deadline' then deadline = tonumber(flat[i + 1]) end
  end
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
end
