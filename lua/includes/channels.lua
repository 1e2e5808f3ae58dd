-- Channel availability of one sku, for the before/after figures of outgoing events.
-- `channels` is ARGV-decoded configuration: {channel id = {low_stock_threshold, {locations}}},
-- restricted by the caller to channels that can see the locations this script may touch.
local function stock_status(available, threshold)
  if available <= 0 then return 'out_of_stock' end
  if available <= threshold then return 'low_stock' end
  return 'in_stock'
end

-- {channel id = available} for every channel that sees `location` (one HMGET per channel).
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
      local values = rcall('HMGET', pos_key, unpack(locs))
      for i = 1, #locs do
        local v = values[i]
        if v then
          local o, h, c, s = string.match(v, '^(%-?%d+):(%-?%d+):(%-?%d+):(%-?%d+)$')
          local available = tonumber(o) - (tonumber(h) - (expired[locs[i]] or 0))
                            - tonumber(c) - tonumber(s)
          if available > 0 then total = total + available end
        end
      end
      out[id] = total
    end
  end
  return out
end
