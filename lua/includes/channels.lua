-- Channel availability of one sku, for the before/after figures of outgoing events.
-- `channels` is ARGV-decoded configuration: {channel id = {low_stock_threshold, {locations},
-- rule?}} (channel_rules.lua), restricted by the caller to channels that can see the locations
-- this script may touch. The totals here are the channel's locations summed; what an event
-- reports is their channel_figure() (event.lua's event_channel()).
--!include position.lua
--!include channel_rules.lua

-- THE status rule of a channel's total (app/domain/stock.py's stock_status is checked against
-- it by tests/lua/test_rules.py).
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
          local o, h, c, s = string.match(v, POS_PATTERN)
          total = total + pos_available(o, h, expired[locs[i]] or 0, c, s)
        end
      end
      out[id] = total
    end
  end
  return out
end
