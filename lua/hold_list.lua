-- One page step of GET /v1/holds in one partition: the hold records named by some members of
-- the partition's listing index (includes/hold_index.lua), each as the store's clock sees it
-- (includes/hold_view.lua). A member whose record has gone (a finished hold past its
-- retention) is dropped from the index here: the listing keeps the index clean.
--
-- KEYS[1]      listing index os:{P}:hl
-- KEYS[1 + i]  the hold record of the i-th member: os:{P}:hold:<id>
-- ARGV[1]      clock offset, ms (0; see includes/clock.lua)
-- ARGV[1 + i]  the i-th member, "<owner> <created_at> <hold id>"
--
-- Reply: one entry per member, in order: the record as HGETALL gives it, extended by
--        hold_view (empty when the record has gone; its member is then removed)

local rcall = redis.call
--!include clock.lua
--!include hold_view.lua

local now = clock_now(ARGV[1])
local out = {}
for i = 2, #KEYS do
  local flat = rcall('HGETALL', KEYS[i])
  if #flat == 0 then rcall('ZREM', KEYS[1], ARGV[i]) end
  out[i - 1] = hold_view(flat, now)
end
return out
