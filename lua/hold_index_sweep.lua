-- The reaper's sweep of a partition's holds listing index (includes/hold_index.lua): drops the
-- members whose hold record has gone (a finished hold past its retention), so the index stays
-- as large as the records even for owners that never list.
--
-- KEYS[1]      listing index os:{P}:hl
-- KEYS[1 + i]  the hold record of the i-th member: os:{P}:hold:<id>
-- ARGV[1], ARGV[2], ...  the members, "<owner> <created_at> <hold id>", in KEYS order
--
-- Reply: how many members were dropped

local rcall = redis.call
local removed = 0
for i = 2, #KEYS do
  if rcall('EXISTS', KEYS[i]) == 0 then removed = removed + rcall('ZREM', KEYS[1], ARGV[i - 1]) end
end
return removed
