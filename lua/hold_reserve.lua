-- Reserve a hold (or one partition's part of a multi-partition hold): source every line,
-- all or nothing, then write the positions, the hold record, both expiry indexes and one
-- event per changed position.
--
-- KEYS[1]  hold record          os:{P}:hold:<id>
-- KEYS[2]  expiry index         os:{P}:expiry
-- KEYS[3]  event stream         os:{P}:events
-- KEYS[3i + 1], KEYS[3i + 2], KEYS[3i + 3]  for the i-th sku of ARGV[12]:
--          position hash                 os:{P}:pos:<sku>
--          active hold lines by expiry   os:{P}:hx:<sku>
--          open hold lines by creation   os:{P}:ho:<sku> (score: event order, ms*1000+seq)
--
-- ARGV[1]  now, ms since the epoch (the caller's clock)
-- ARGV[2]  hold id
-- ARGV[3]  status to create: "active", or "pending" for a part awaiting confirmation
-- ARGV[4]  expires_at, ms
-- ARGV[5]  count_until, ms: when the lines stop counting (expires_at, or the pending deadline)
-- ARGV[6]  channel ("" for none)
-- ARGV[7]  reference ("" for none)
-- ARGV[8]  parts: comma-separated partitions of the whole hold, its home partition first
-- ARGV[9]  allow_split: "1" or "0"
-- ARGV[10] oldest event id to keep (ms), for stream trimming
-- ARGV[11] lines JSON: [{"s": sku index (1-based), "q": quantity, "l": location?}, ...]
-- ARGV[12] skus JSON: ["sku", ...] naming the key pairs in order
-- ARGV[13] candidate locations JSON, best first, for lines without a location
-- ARGV[14] created_at, ms
-- ARGV[15] channels JSON {id: [low_stock_threshold, [locations]]} that see the candidates
--
-- Replies:
--   {"ok", lines JSON [{"sku","location","quantity"}]}   reserved
--   {"exists", status}                                   a hold with this id already exists
--   {"insufficient", JSON [{"sku","requested","available","location"?}]}  nothing changed

local rcall = redis.call
--!include position.lua
--!include channels.lua
--!include state.lua

local hold_key, expiry_key, stream_key = KEYS[1], KEYS[2], KEYS[3]
-- A retry of a create that got through: before any other work.
local existing = rcall('HGET', hold_key, 'status')
if existing then return {'exists', existing} end

local now = tonumber(ARGV[1])
local hold_id = ARGV[2]
local count_until = ARGV[5]
local allow_split = ARGV[9] == '1'
local min_id = ARGV[10]
local lines = cjson.decode(ARGV[11])
local skus = cjson.decode(ARGV[12])
local candidates = cjson.decode(ARGV[13])
local created_at = ARGV[14]
local channels = cjson.decode(ARGV[15])

-- Each sku's positions (candidates, pinned and channel locations: what sourcing and the
-- events read) and lapsed lines, read once on first use (state.lua); `taken` holds the units
-- this hold has sourced there so far.
local pinned = {}
for _, line in ipairs(lines) do
  if line.l then pinned[#pinned + 1] = line.l end
end
for _, loc in ipairs(candidates) do pinned[#pinned + 1] = loc end
local wanted = state_locations(pinned, channels)
local states = {}
local function state_of(si)
  local s = states[si]
  if not s then
    s = state_load(KEYS[3 * si + 1], KEYS[3 * si + 2], now, wanted)
    s.taken = {}
    states[si] = s
  end
  return s
end

-- Availability by (sku index, location), excluding expired lines and units taken so far.
local function free(si, loc)
  local s = state_of(si)
  return state_available(s, loc) - (s.taken[loc] or 0)
end

-- Merged allocations: one line per (sku, location), in the order first taken.
local order = {}  -- {si, loc}
local function take(si, loc, q)
  local taken = states[si].taken
  if not taken[loc] then
    taken[loc] = q
    order[#order + 1] = {si, loc}
  else
    taken[loc] = taken[loc] + q
  end
end

local short = {}
local unpinned = {}

for _, line in ipairs(lines) do
  if line.l then
    local have = free(line.s, line.l)
    if have >= line.q then
      take(line.s, line.l, line.q)
    else
      short[#short + 1] = {sku = skus[line.s], location = line.l, requested = line.q,
                           available = math.max(have, 0)}
    end
  else
    unpinned[#unpinned + 1] = line
  end
end

if #unpinned > 0 and #short == 0 then
  -- One location for every unpinned line, best candidate first.
  local chosen = nil
  for _, loc in ipairs(candidates) do
    local fits, need = true, {}
    for _, line in ipairs(unpinned) do
      need[line.s] = (need[line.s] or 0) + line.q
      if free(line.s, loc) < need[line.s] then fits = false break end
    end
    if fits then chosen = loc break end
  end
  if chosen then
    for _, line in ipairs(unpinned) do take(line.s, chosen, line.q) end
  else
    for _, line in ipairs(unpinned) do
      local total = 0
      for _, loc in ipairs(candidates) do total = total + math.max(free(line.s, loc), 0) end
      if allow_split and total >= line.q then
        local left = line.q
        for _, loc in ipairs(candidates) do
          if left == 0 then break end
          local n = math.min(left, math.max(free(line.s, loc), 0))
          if n > 0 then
            take(line.s, loc, n)
            left = left - n
          end
        end
      else
        -- Short: with a split, when every location together lacks units; without one, when
        -- no single location has the line (report its best location).
        local have = total
        if not allow_split then
          have = 0
          for _, loc in ipairs(candidates) do have = math.max(have, free(line.s, loc)) end
        end
        if have < line.q then
          short[#short + 1] = {sku = skus[line.s], requested = line.q, available = have}
        end
      end
    end
    if #short == 0 and not allow_split then
      -- Every line fits somewhere, but no one location serves the whole hold: name them all,
      -- each with its best location.
      for _, line in ipairs(unpinned) do
        local have = 0
        for _, loc in ipairs(candidates) do have = math.max(have, free(line.s, loc)) end
        short[#short + 1] = {sku = skus[line.s], requested = line.q, available = have}
      end
    end
  end
end

if #short > 0 then return {'insufficient', cjson.encode(short)} end

local seers = state_seers(channels)
local lapsed_at_once = tonumber(count_until) <= now
local out = {}
for i, a in ipairs(order) do
  local si, loc = a[1], a[2]
  local s = states[si]
  local q = s.taken[loc]
  local before = state_before(s, channels, seers, loc)
  local p = s.pos[loc]
  p.held = p.held + q
  state_write(s, loc, p)
  local member = hold_id .. '|' .. loc .. '|' .. q
  rcall('ZADD', KEYS[3 * si + 2], count_until, member)
  if lapsed_at_once then s.expired[loc] = (s.expired[loc] or 0) + q end
  local event_id = state_emit(stream_key, min_id, now, channels, seers, 'hold.reserved',
                              skus[si], loc, s, before, 'hold', hold_id)
  -- Ordered by the partition's own event order (ms * 1000 + seq), so "newest first" holds
  -- even within one ms.
  local ms, seq = string.match(event_id, '^(%d+)-(%d+)$')
  rcall('ZADD', KEYS[3 * si + 3], tonumber(ms) * 1000 + math.min(tonumber(seq), 999), member)
  -- What cjson.encode({sku =, location =, quantity =}) writes, keys in its order; skus and
  -- locations are identifiers: nothing to escape.
  out[i] = string.format('{"location":"%s","quantity":%d,"sku":"%s"}', loc, q, skus[si])
end

local lines_json = '[' .. table.concat(out, ',') .. ']'
rcall('HSET', hold_key, 'status', ARGV[3], 'channel', ARGV[6], 'reference', ARGV[7],
      'created_at', created_at, 'updated_at', now, 'expires_at', ARGV[4],
      'count_until', count_until, 'lines', lines_json, 'parts', ARGV[8])
rcall('ZADD', expiry_key, count_until, hold_id)
return {'ok', lines_json}
