-- THE channel rule (docs/architecture.md "Channel rules"): a channel's buffer and excluded skus.
-- A channel travels to scripts as {low_stock_threshold, {locations}, rule?} (app/domain/
-- channel_rules.py script_entry), rule = {u = units | p = percent, x = {sku = true}}, absent
-- when the channel has none. app/domain/channel_rules.py's channel_figure is checked against
-- this one by tests/lua/test_rules.py.

-- Is `sku` excluded from channel `ch` (the channel must not see it, on hand or on its way)?
local function channel_excludes(ch, sku)
  local r = ch[3]
  return r ~= nil and r.x ~= nil and r.x[sku] == true
end

-- What channel `ch` may promise of `sku` whose available at the channel's locations sums to
-- `total` (each location's available, safety stock already out): 0 for an excluded sku; else
-- the total less the buffer (`u` units, or `p` percent of the total rounded up to a unit),
-- never below 0. total * (100 - p) is an integer, exact in a double, so floor(/100) is exact.
local function channel_figure(ch, sku, total)
  local r = ch[3]
  if not r then return total end
  if channel_excludes(ch, sku) then return 0 end
  if r.u then
    total = total - r.u
  elseif r.p then
    total = math.floor(total * (100 - r.p) / 100)
  end
  if total < 0 then return 0 end
  return total
end

-- The figure of `sku` through channel `ch`, `a[loc]` its available by location (the channel's
-- locations summed; a location missing from `a` counts 0).
local function channel_limit(ch, sku, a)
  local total, locs = 0, ch[2]
  for i = 1, #locs do total = total + (a[locs[i]] or 0) end
  return channel_figure(ch, sku, total)
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
  local short = nil
  for si = 1, #skus do
    local q = need[si]
    if q then
      local figure = channel_limit(ch, skus[si], avail[si])
      if q > figure then
        short = short or {}
        short[#short + 1] = {sku = skus[si], requested = q, available = figure}
      end
    end
  end
  return short
end
