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
--!include emit.lua

local hold_key, expiry_key, stream_key = KEYS[1], KEYS[2], KEYS[3]
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
local function pos_key_of(si) return KEYS[3 * si + 1] end
local function hx_key_of(si) return KEYS[3 * si + 2] end
local function ho_key_of(si) return KEYS[3 * si + 3] end

local existing = rcall('HGET', hold_key, 'status')
if existing then return {'exists', existing} end

-- Availability by (sku index, location), excluding expired lines and units taken so far.
local positions, expired, taken = {}, {}, {}
local function free(si, loc)
  local key = si .. '|' .. loc
  if positions[key] == nil then
    local p = pos_read(pos_key_of(si), loc)
    positions[key] = p or false
    if expired[si] == nil then expired[si] = expired_by_location(hx_key_of(si), now) end
  end
  local p = positions[key]
  if not p then return 0 end
  return pos_view(p, expired[si][loc]).available - (taken[key] or 0)
end
local function take(si, loc, q)
  local key = si .. '|' .. loc
  taken[key] = (taken[key] or 0) + q
end

local allocations = {}  -- {si, loc, q}
local short = {}
local unpinned = {}

for _, line in ipairs(lines) do
  if line.l then
    local have = free(line.s, line.l)
    if have >= line.q then
      take(line.s, line.l, line.q)
      allocations[#allocations + 1] = {line.s, line.l, line.q}
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
    for _, line in ipairs(unpinned) do
      take(line.s, chosen, line.q)
      allocations[#allocations + 1] = {line.s, chosen, line.q}
    end
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
            allocations[#allocations + 1] = {line.s, loc, n}
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

-- Merge allocations of the same sku and location into one line.
local merged, order = {}, {}
for _, a in ipairs(allocations) do
  local key = a[1] .. '|' .. a[2]
  if merged[key] then
    merged[key][3] = merged[key][3] + a[3]
  else
    merged[key] = {a[1], a[2], a[3]}
    order[#order + 1] = key
  end
end

local out = {}
for _, key in ipairs(order) do
  local si, loc, q = merged[key][1], merged[key][2], merged[key][3]
  local pos_key, hx_key = pos_key_of(si), hx_key_of(si)
  local before = track(channels, pos_key, hx_key, loc, now)
  local p = positions[key]
  p.held = p.held + q
  pos_write(pos_key, loc, p)
  local member = hold_id .. '|' .. loc .. '|' .. q
  rcall('ZADD', hx_key, count_until, member)
  local _, event_id = emit_change(stream_key, min_id, now, channels, 'hold.reserved', skus[si],
                                  loc, pos_key, hx_key, before, {hold = hold_id})
  -- Ordered by the partition's own event order, so "newest first" holds even within one ms.
  rcall('ZADD', ho_key_of(si), event_order(event_id), member)
  out[#out + 1] = {sku = skus[si], location = loc, quantity = q}
end

local lines_json = cjson.encode(out)
rcall('HSET', hold_key, 'status', ARGV[3], 'channel', ARGV[6], 'reference', ARGV[7],
      'created_at', created_at, 'updated_at', now, 'expires_at', ARGV[4],
      'count_until', count_until, 'lines', lines_json, 'parts', ARGV[8])
rcall('ZADD', expiry_key, count_until, hold_id)
return {'ok', lines_json}
