-- Supply lines (stock on its way to a location) and the units promised from them to holds
-- (docs/architecture.md, "Future supply and promising"). THE promising rules live here and in
-- promise_read.lua (their read side, with the formats of the supply and promise hashes).
--!include promise_read.lua

local function promise_value(units, count_until, created, needed_by)
  return string.format('%d|%d|%d|%d', units, count_until, created, needed_by)
end

-- The order of a promise made now (promise_read.lua, the px value): ms × 1000, or just above
-- `newest`, the newest order of the sku's promises that count (supply_lines), when one was
-- made in this ms already. "Newest first" (supply_put.lua) and "oldest first"
-- (supply_receive.lua) then follow the order the promises were made in, never a tie that
-- the hold ids' order breaks at random.
local function promise_order(now, newest)
  return math.max(now * 1000, newest + 1)
end

-- Can a promise with this needed_by (0: none) wait for this eta?
local function promise_fits(eta, needed_by)
  return needed_by == 0 or eta <= needed_by
end

-- The px key of each sku a transition was given: keys of shape os:{P}:px:<sku>, anywhere in
-- KEYS (app/store/calls.py appends them after the sku pairs, before an idempotency record).
local function promise_keys()
  local out = {}
  for i = 1, #KEYS do
    local sku = string.match(KEYS[i], '^[^{]*{[^}]*}:px:(.*)$')
    if sku then out[sku] = KEYS[i] end
  end
  return out
end

-- Does a hold record list promised units (not yet received)?
local function promise_any(h)
  return h.promises ~= nil and h.promises ~= '' and h.promises ~= '[]'
end

-- Call fn(px key, field) for each promise of a hold record (field `promises`, JSON
-- [{sku, location, supply_id, quantity, available_from}]) whose px key the script was given.
local function promise_each(hold_id, h, fn)
  if not promise_any(h) then return end
  local pkeys = promise_keys()
  for _, pr in ipairs(cjson.decode(h.promises)) do
    local key = pkeys[pr.sku]
    if key then fn(key, hold_id .. '|' .. pr.location .. '|' .. pr.supply_id) end
  end
end

-- Move a hold's promises to count until `count_until` (-1: committed, never lapses).
local function promise_rescore(hold_id, h, count_until)
  promise_each(hold_id, h, function(key, field)
    local v = rcall('HGET', key, field)
    if v then
      local u, _, cr, nb = promise_parse(v)
      rcall('HSET', key, field, promise_value(u, count_until, cr, nb))
    end
  end)
end

-- A hold transition's effect on the hold's promises: commit makes them stop lapsing; release,
-- expiry, abort and rollback give the units back to their supply lines. Fulfil never reaches
-- promises still waiting for their supply (hold_fulfil.lua refuses it first: 409
-- promise_not_received).
local function promise_follow(hold_id, h, ev_type)
  if ev_type == 'hold.committed' then
    promise_rescore(hold_id, h, -1)
  else
    promise_each(hold_id, h, function(key, field) rcall('HDEL', key, field) end)
  end
end
