-- Channel availability of one sku, for the before/after figures of outgoing events.
-- `channels` is ARGV-decoded configuration: {channel id = {low_stock_threshold, {locations}}},
-- restricted by the caller to channels that can see the locations this script may touch.
local function stock_status(available, threshold)
  if available <= 0 then return 'out_of_stock' end
  if available <= threshold then return 'low_stock' end
  return 'in_stock'
end

-- {channel id = available} for every channel that sees `location`.
local function channel_totals(channels, pos_key, expired, location)
  local out = {}
  for id, ch in pairs(channels) do
    local locs = ch[2]
    local sees = false
    for i = 1, #locs do
      if locs[i] == location then sees = true break end
    end
    if sees then
      local total = 0
      for _, loc in ipairs(locs) do
        local p = pos_read(pos_key, loc)
        if p then total = total + pos_view(p, expired[loc]).available end
      end
      out[id] = total
    end
  end
  return out
end
