-- THE channel rule (docs/architecture.md "Channel rules"): a channel's buffer and excluded skus.
-- A channel travels to scripts as {low_stock_threshold, {locations}, rule?} (app/domain/
-- channel_rules.py script_entry), rule = {u = units | p = percent, x = {sku = true}}, absent
-- when the channel has none. app/domain/channel_rules.py's channel_figure is checked against
-- this one by tests/lua/test_rules.py.

-- What channel `ch` may promise of `sku` whose available at the channel's locations sums to
-- `total` (each location's available, safety stock already out): 0 for an excluded sku; else
-- the total less the buffer (`u` units, or `p` percent of the total rounded up to a unit),
-- never below 0. total * (100 - p) is an integer, exact in a double, so floor(/100) is exact.
local function channel_figure(ch, sku, total)
  local r = ch[3]
  if not r then return total end
  if r.x and r.x[sku] then return 0 end
  if r.u then
    total = total - r.u
  elseif r.p then
    total = math.floor(total * (100 - r.p) / 100)
  end
  if total < 0 then return 0 end
  return total
end

-- A hold through channel `ch` (one with a rule) takes of each sku at most the channel's
-- figure, whatever the locations: the units its buffer keeps back, or an excluded sku's, are
-- never held through it. `lines`: {s = sku index, q = units},
-- `avail[si][loc]`: available by location. Returns the short skus, {sku, requested,
-- available = the channel's figure}, in sku order, or nil.
local function channel_short(ch, skus, lines, avail)
  local need = {}
  for i = 1, #lines do
    local line = lines[i]
    need[line.s] = (need[line.s] or 0) + line.q
  end
  local short, locs = nil, ch[2]
  for si = 1, #skus do
    local q = need[si]
    if q then
      local total = 0
      for i = 1, #locs do total = total + (avail[si][locs[i]] or 0) end
      local figure = channel_figure(ch, skus[si], total)
      if q > figure then
        short = short or {}
        short[#short + 1] = {sku = skus[si], requested = q, available = figure}
      end
    end
  end
  return short
end
