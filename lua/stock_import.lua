-- Bulk import of a snapshot from ERP/WMS (`omnistock import`): set the absolute on_hand (and
-- optionally safety_stock) of many positions of one partition, in order. A row that changes
-- nothing (same on_hand, same safety_stock) writes nothing and emits nothing, so re-running a
-- file, or resuming it from an earlier line, leaves the same state and no extra events. Every
-- row that does change a position emits one `stock.imported` event (the same fields as
-- `stock.set`: position after, channel availability before/after) and, like stock_set.lua, a
-- `shortfall` event when on_hand is now below held + committed. Held and committed units are
-- untouched.
--
-- KEYS[1] event stream                   os:{P}:events
-- KEYS[2] skus of partition              os:{P}:skus
-- KEYS[3i], KEYS[3i + 1], KEYS[3i + 2]   for the i-th distinct sku of the batch:
--         position hash                  os:{P}:pos:<sku>
--         active hold lines by expiry    os:{P}:hx:<sku>
--         open hold lines by creation    os:{P}:ho:<sku>
--
-- ARGV[1] now, ms
-- ARGV[2] oldest event id to keep (ms)
-- ARGV[3] channels JSON {id: [low_stock_threshold, [locations]]} that see the locations
-- ARGV[4 + 5(j - 1) .. 8 + 5(j - 1)]  for the j-th row, five values:
--         sku, its key triple index i (KEYS[3i..3i + 2]), location, on_hand (integer, may be
--         negative), safety_stock ("" keeps the current value; 0 for a new position)
--
-- Reply: {changed, unchanged}: how many rows changed a position, how many changed nothing

local rcall = redis.call
--!include position.lua
--!include channels.lua
--!include shortfall.lua

local stream_key, skus_key = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local min_id = ARGV[2]
local channels = cjson.decode(ARGV[3])

-- Bulk path: each sku's hash is read once (HGETALL) and its lapsed lines once, then kept in
-- this table with its channel totals, which a row then moves by its own change of available.
-- A row costs an HSET and an XADD instead of a dozen reads (redis.call and table work, not the
-- command, is what costs in a script). The event has exactly the fields emit_change()
-- (includes/emit.lua) writes for `stock.set`; tests/lua compare the two.
local seen_by = {}  -- location -> ids of the channels that see it
for id, ch in pairs(channels) do
  for _, loc in ipairs(ch[2]) do
    local list = seen_by[loc]
    if not list then list = {} seen_by[loc] = list end
    list[#list + 1] = id
  end
end
local NONE = {}

local cache = {}
local function sku_state(si)
  local s = cache[si]
  if s == nil then
    local flat = rcall('HGETALL', KEYS[3 * si])
    local pos = {}
    for i = 1, #flat, 2 do
      local o, h, c, sf = string.match(flat[i + 1], '^(%-?%d+):(%-?%d+):(%-?%d+):(%-?%d+)$')
      pos[flat[i]] = {on_hand = tonumber(o), held = tonumber(h), committed = tonumber(c),
                      safety = tonumber(sf)}
    end
    s = {pos = pos, expired = expired_by_location(KEYS[3 * si + 1], now), totals = {}}
    cache[si] = s
  end
  return s
end

local function channel_total(s, id)
  local total = s.totals[id]
  if total == nil then
    total = 0
    for _, loc in ipairs(channels[id][2]) do
      local p = s.pos[loc]
      if p then total = total + pos_view(p, s.expired[loc]).available end
    end
    s.totals[id] = total
  end
  return total
end

local changed, unchanged = 0, 0
for j = 4, #ARGV, 5 do
  local sku, si, location = ARGV[j], tonumber(ARGV[j + 1]), ARGV[j + 2]
  local on_hand = tonumber(ARGV[j + 3])
  local s = sku_state(si)
  local p = s.pos[location]
  local safety = ARGV[j + 4]
  if safety == '' then safety = p and p.safety or 0 else safety = tonumber(safety) end
  if p and p.on_hand == on_hand and p.safety == safety then
    unchanged = unchanged + 1
  else
    local pos_key = KEYS[3 * si]
    local seers = seen_by[location] or NONE
    local before = {}
    for k = 1, #seers do before[k] = channel_total(s, seers[k]) end
    local owed, old = 0, 0
    if p then
      owed = p.held + p.committed
      old = pos_view(p, s.expired[location]).available
    else
      if next(s.pos) == nil then rcall('SADD', skus_key, sku) end  -- the sku's first position
      p = {on_hand = 0, held = 0, committed = 0, safety = 0}
      s.pos[location] = p
    end
    p.on_hand, p.safety = on_hand, safety
    pos_write(pos_key, location, p)
    local view = pos_view(p, s.expired[location])
    local delta = view.available - old
    local moved = nil
    for k = 1, #seers do
      local id, b = seers[k], before[k]
      local a = b + delta
      s.totals[id] = a
      local threshold = channels[id][1]
      local sb, sa = stock_status(b, threshold), stock_status(a, threshold)
      if a ~= b or sa ~= sb then
        moved = (moved and moved .. ',' or '[') .. '{"channel":"' .. id ..
          '","available_before":' .. b .. ',"available_after":' .. a ..
          ',"status_before":"' .. sb .. '","status_after":"' .. sa .. '"}'
      end
    end
    if moved then
      rcall('XADD', stream_key, 'MINID', '~', min_id, '*', 'type', 'stock.imported', 'sku', sku,
            'location', location, 'at', now, 'on_hand', view.on_hand, 'held', view.held,
            'committed', view.committed, 'safety_stock', view.safety,
            'available', view.available, 'channels', moved .. ']')
    else
      rcall('XADD', stream_key, 'MINID', '~', min_id, '*', 'type', 'stock.imported', 'sku', sku,
            'location', location, 'at', now, 'on_hand', view.on_hand, 'held', view.held,
            'committed', view.committed, 'safety_stock', view.safety,
            'available', view.available)
    end
    -- Only then can on_hand be below held + committed (as check_shortfall itself decides).
    if owed > 0 or on_hand < 0 then
      check_shortfall(stream_key, min_id, now, sku, location, pos_key, KEYS[3 * si + 1],
                      KEYS[3 * si + 2], {})
    end
    changed = changed + 1
  end
end
return {changed, unchanged}
