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
-- KEYS[2i + 1], KEYS[2i + 2]            for the i-th sku of the call:
--         position hash                  os:{P}:pos:<sku>
--         open hold lines                os:{P}:hx:<sku> (includes/position.lua line_member)
--
-- ARGV[1] clock offset, ms (0; see includes/clock.lua)
-- ARGV[2] event retention, ms (MINID trimming)
-- ARGV[3] channels JSON {id: [low_stock_threshold, [locations], rule?]} (channel_rules.lua)
--         that see the locations
-- ARGV[4 ..] for the i-th sku, in the order of KEYS: the sku, its row count n, then n rows of
--         three values, applied in order: location, on_hand (integer, may be negative),
--         safety_stock ("" keeps the current value; 0 for a new position)
--
-- Reply: {changed, unchanged}: how many rows changed a position, how many changed nothing

local rcall = redis.call
--!include clock.lua
--!include shortfall.lua

local stream_key, skus_key = KEYS[1], KEYS[2]
local now = clock_now(ARGV[1])
local at = tostring(now)
local min_id = clock_min_id(now, ARGV[2])
local channels = cjson.decode(ARGV[3])

-- Bulk path: each sku's hash is read once (HGETALL) and its lapsed lines once; its channel
-- totals are computed once and then moved by each row's own change of available. Its changed
-- fields are written with one HSET, new skus join the partition's set with one SADD per call
-- and only the call's first XADD trims the stream, so a changed row costs one short XADD
-- (redis.call and its arguments, not the command, are what cost in a script). Figures travel
-- as the text they came in (ARGV, the hash) where they are unchanged: Lua turns a number into
-- text with sprintf. The event is event.lua's record, as emit_change() (includes/emit.lua)
-- writes it for `stock.set`; tests/importer compare the two.
local argv, tonumber, match = ARGV, tonumber, string.match
local seen_by = {}  -- location -> ids of the channels that see it
local locs_of = {}  -- by channel id
for id, ch in pairs(channels) do
  locs_of[id] = ch[2]
  for _, loc in ipairs(ch[2]) do
    local list = seen_by[loc]
    if not list then list = {} seen_by[loc] = list end
    list[#list + 1] = id
  end
end
local NONE = {}
local MAX_UNPACK = 200  -- field/value pairs or members per HSET/SADD, well inside unpack()
-- The first event of the call also trims the stream by age (once per call is enough, and it
-- keeps MINID's three arguments off every other XADD).
local trim_to = min_id

local changed, unchanged = 0, 0
local new_skus, n_new = {}, 0
local before = {}
local nargs = #argv
local j, si = 4, 0
while j <= nargs do
  si = si + 1
  local sku, n = argv[j], tonumber(argv[j + 1])
  j = j + 2
  local pos_key = KEYS[2 * si + 1]
  local flat = rcall('HGETALL', pos_key)
  -- location -> {on_hand, held, committed, safety, held text, committed text, safety text}
  local pos = {}
  for i = 1, #flat, 2 do
    local o, h, c, sf = match(flat[i + 1], POS_PATTERN)
    pos[flat[i]] = {tonumber(o), tonumber(h), tonumber(c), tonumber(sf), h, c, sf}
  end
  local fresh = #flat == 0
  -- No position, no hold line: holds are taken on positions, which are never deleted.
  local expired = fresh and NONE or expired_by_location(KEYS[2 * si + 2], now)
  local totals = {}  -- channel id -> its available, kept current row by row
  local writes, nw = {}, 0

  for _ = 1, n do
    local location, on_hand_text, safety_text = argv[j], argv[j + 1], argv[j + 2]
    j = j + 3
    local on_hand = tonumber(on_hand_text)
    local p = pos[location]
    local safety
    if safety_text == '' then
      if p then safety, safety_text = p[4], p[7] else safety, safety_text = 0, '0' end
    else
      safety = tonumber(safety_text)
    end
    if p and p[1] == on_hand and p[4] == safety then
      unchanged = unchanged + 1
    else
      local seers = seen_by[location] or NONE
      for k = 1, #seers do
        local id = seers[k]
        local total = totals[id]
        if total == nil then
          total = 0
          local locs = locs_of[id]
          for m = 1, #locs do
            local loc = locs[m]
            local q = pos[loc]
            if q then total = total + pos_available(q[1], q[2], expired[loc] or 0, q[3], q[4]) end
          end
        end
        before[k] = total
      end
      local lapsed = expired[location] or 0
      local owed, old = 0, 0
      if p then
        owed = p[2] + p[3]
        old = pos_available(p[1], p[2], lapsed, p[3], p[4])
      else
        p = {0, 0, 0, 0, '0', '0', '0'}
        pos[location] = p
      end
      p[1], p[4], p[7] = on_hand, safety, safety_text
      writes[nw + 1] = location
      writes[nw + 2] = on_hand_text .. ':' .. p[5] .. ':' .. p[6] .. ':' .. safety_text
      nw = nw + 2
      local held = lapsed == 0 and p[5] or p[2] - lapsed
      local available = pos_available(on_hand, p[2], lapsed, p[3], safety)
      local delta = available - old
      local moved = nil
      for k = 1, #seers do
        local id, b = seers[k], before[k]
        totals[id] = b + delta
        moved = event_channel(moved, id, b, b + delta, channels[id], sku)
      end
      event_add(stream_key, trim_to, 'stock.imported', sku, location, at, on_hand_text, held,
                p[6], safety_text, available, moved)
      trim_to = nil
      -- Only then can on_hand be below held + committed (as check_shortfall itself decides);
      -- it reads the position, so the pending writes go first.
      if owed > 0 or on_hand < 0 or nw >= 2 * MAX_UNPACK then
        rcall('HSET', pos_key, unpack(writes, 1, nw))
        nw = 0
        if owed > 0 or on_hand < 0 then
          check_shortfall(stream_key, min_id, now, sku, location, pos_key, KEYS[2 * si + 2],
                          {})
        end
      end
      changed = changed + 1
    end
  end
  if nw > 0 then rcall('HSET', pos_key, unpack(writes, 1, nw)) end
  if fresh and next(pos) ~= nil then  -- the sku's first positions
    n_new = n_new + 1
    new_skus[n_new] = sku
    if n_new == MAX_UNPACK then
      rcall('SADD', skus_key, unpack(new_skus, 1, n_new))
      n_new = 0
    end
  end
end
if n_new > 0 then rcall('SADD', skus_key, unpack(new_skus, 1, n_new)) end
return {changed, unchanged}
