-- Reserve a hold (or one partition's part of a multi-partition hold): source every line,
-- all or nothing, then write the positions, the hold record, the expiry index and the sku's
-- line index and one event per changed position.
--
-- KEYS[1]  hold record          os:{P}:hold:<id>
-- KEYS[2]  expiry index         os:{P}:expiry
-- KEYS[3]  event stream         os:{P}:events
-- KEYS[2i + 2], KEYS[2i + 3]  for the i-th sku of ARGV[12]:
--          position hash                 os:{P}:pos:<sku>
--          open hold lines               os:{P}:hx:<sku> (member "<order>|<hold>|<location>|
--                                        <qty>", order: the line's event order, ms*1000+seq;
--                                        score: count_until; includes/position.lua)
--
-- ARGV[1]  clock offset, ms (0; see includes/clock.lua): now, created_at, expires_at and
--          count_until all come from the store's clock
-- ARGV[2]  hold id
-- ARGV[3]  status to create: "active", or "pending" for a part awaiting confirmation
-- ARGV[4]  TTL, ms: expires_at = now + TTL
-- ARGV[5]  pending TTL, ms, for a "pending" part: its deadline is now + this (written as the
--          record's `deadline` and its expiry-index score: the home part can be confirmed
--          only before it, and the reaper settles a part still pending after it); ignored for
--          "active" (count_until = expires_at)
-- ARGV[6]  channel ("" for none)
-- ARGV[7]  reference ("" for none)
-- ARGV[8]  parts: comma-separated partitions of the whole hold, its home partition first
-- ARGV[9]  allow_split: "1" or "0"
-- ARGV[10] event retention, ms (MINID trimming)
-- ARGV[11] lines JSON: [{"s": sku index (1-based), "q": quantity, "l": location?,
--          "g": group?}, ...]; lines of one group (the components of one kit line) are all
--          sourced at one location (includes/split.lua)
-- ARGV[12] skus JSON: ["sku", ...] naming the key pairs in order
-- ARGV[13] candidate locations JSON, best first, for lines without a location
-- ARGV[14] max_locations: how many locations a split may use ("" or "0": no cap; was
--          created_at, unused, before; includes/split.lua)
-- ARGV[15] channels JSON {id: [low_stock_threshold, [locations], rule?]} that see the
--          candidates (includes/channel_rules.lua), the hold's channel among them
-- ARGV[16] owner: the API key name that creates the hold ("" for the anonymous owner)
-- ARGV[17] pending grace, ms (absent: 0): a pending part's lines count until its deadline +
--          this (count_until), so settling it after the deadline never needs units that
--          were given away (docs/architecture.md "Settling a multi-partition hold")
-- ARGV[18] metadata JSON object ("" for none: then nothing more is written)
-- KEYS[2n + 4] (n = #skus) the partition's holds listing index os:{P}:hl (hold_index.lua)
-- KEYS[last], ARGV[19..21]: the Idempotency-Key claim (includes/idempotency.lua: the last key
--          and the last three ARGV), checked first and written with the outcome
--          (includes/hold_create.lua): a create is one script call, its stored response
--          included, in the home slot
--
-- Replies:
--   {"ok", lines JSON [{"sku","location","quantity"}], created_at, expires_at}   reserved
--   {"exists", status}                                   a hold with this id already exists
--   {"insufficient", JSON [{"sku","requested","available","location"?}]}  nothing changed
--   {"idem", ...}                                        the claim's answer (idempotency.lua)
-- A keyed "ok" has stored its response in the claim's record (idem_finish: 201, the deferred
-- form IDEM_HOLD_CREATED): the request needs no idempotency_complete.lua call; a keyed
-- "exists" or "insufficient" has taken the claim (in flight), which the service completes.

-- Store time is the budget here (issue #5: a 1-line hold <= 25 µs per EVALSHA): every table,
-- closure, string and library call costs more than a command's own work (see
-- benchmarks/hold_profile.py), so this script keeps its own flat state instead of
-- includes/state.lua's — a sku's HMGET reply, available by location, units taken, lapsed units
-- — parses a position only into its available (and fully only where it writes), and walks the
-- decoded channels directly. Its rules are the shared ones: pos_available (position.lua),
-- the event record (event.lua); what it writes and emits is what state.lua's state_write() /
-- state_emit() would. Arguments whose text repeats from call to call (channels, candidates,
-- lines, TTL, retention) are parsed once (memo.lua), and numbers are read from text as
-- rarely as possible: a strtod costs ~1,300 instructions (benchmarks/hold_callgrind.py,
-- docs/benchmarks.md "Session 6, the hold's store time").

local rcall, tonumber, match, format = redis.call, tonumber, string.match, string.format
--!include clock.lua
--!include event.lua
--!include hold_create.lua
--!include split.lua
--!include hold_index.lua
--!include memo.lua
local POS = POS_PATTERN

local hold_key, expiry_key, stream_key = KEYS[1], KEYS[2], KEYS[3]
local now = clock_now(ARGV[1])
local stop = hold_create_start(hold_key, now)
if stop then return stop end

local hold_id = ARGV[2]
local expires_at = now + memo(4, tonumber, ARGV[4])
local deadline = ARGV[3] == 'pending' and now + tonumber(ARGV[5]) or nil
local count_until = deadline and deadline + (tonumber(ARGV[17]) or 0) or expires_at
local allow_split = ARGV[9] == '1'
local min_id = clock_min_id(now, memo(5, tonumber, ARGV[10]))
local lines = memo(3, cjson.decode, ARGV[11])
local skus = cjson.decode(ARGV[12])
local candidates = memo(1, cjson.decode, ARGV[13])
local channels = memo(2, cjson.decode, ARGV[15])
local nlines, ncand = #lines, #candidates
local wanted, at, nw = hold_locations(lines, candidates, channels)

-- Per sku index: raw[si] its HMGET reply, avail[si][loc] its available (excluding lapsed
-- lines, at least 0), lapsed[si][loc] its lapsed units, and taken[si][loc] the
-- units this hold has sourced there so far.
local nskus = #skus
local raw, avail, lapsed, taken = {}, {}, {}, {}
for si = 1, nskus do
  local ex = expired_by_location(KEYS[2 * si + 3], now)
  local a = {}
  if nw > 0 then
    local values = rcall('HMGET', KEYS[2 * si + 2], unpack(wanted))
    raw[si] = values
    for i = 1, nw do
      local v, loc = values[i], wanted[i]
      a[loc] = v and pos_available_text(v, ex[loc] or 0) or 0
    end
  else
    raw[si] = a
  end
  avail[si], lapsed[si], taken[si] = a, ex, {}
end

-- Availability by (sku index, location), excluding expired lines and units taken so far.
local function free(si, loc)
  return avail[si][loc] - (taken[si][loc] or 0)
end

-- Merged allocations: one line per (sku, location), in the order first taken.
local order_s, order_l, norder = {}, {}, 0
local function take(si, loc, q)
  local t = taken[si]
  if not t[loc] then
    t[loc] = q
    norder = norder + 1
    order_s[norder], order_l[norder] = si, loc
  else
    t[loc] = t[loc] + q
  end
end

-- Channel rules (channel_rules.lua): a hold through a channel with a buffer or exclusions
-- never takes what the channel may not promise. A channel without a rule costs two lookups.
local hold_channel = channels[ARGV[6]]
if hold_channel and hold_channel[3] then
  local over = channel_short(hold_channel, skus, lines, avail)
  if over then return hold_create_refuse(now, {'insufficient', cjson.encode(over)}) end
end
local short = {}
local unpinned, nun = {}, 0

for i = 1, nlines do
  local line = lines[i]
  if line.l then
    local have = free(line.s, line.l)
    if have >= line.q then
      take(line.s, line.l, line.q)
    else
      short[#short + 1] = {sku = skus[line.s], location = line.l, requested = line.q,
                           available = math.max(have, 0)}
    end
  else
    nun = nun + 1
    unpinned[nun] = line
  end
end

if nun > 0 and #short == 0 then
  -- One location for every unpinned line, best candidate first.
  local chosen = nil
  if nun == 1 then
    local line = unpinned[1]
    local a, t, q = avail[line.s], taken[line.s], line.q
    for c = 1, ncand do
      local loc = candidates[c]
      if a[loc] - (t[loc] or 0) >= q then chosen = loc break end
    end
  else
    for c = 1, ncand do
      local loc = candidates[c]
      local fits, need = true, {}
      for i = 1, nun do
        local line = unpinned[i]
        need[line.s] = (need[line.s] or 0) + line.q
        if free(line.s, loc) < need[line.s] then fits = false break end
      end
      if fits then chosen = loc break end
    end
  end
  if chosen then
    for i = 1, nun do
      local line = unpinned[i]
      take(line.s, chosen, line.q)
    end
  elseif allow_split and split_needed(unpinned, tonumber(ARGV[14]) or 0) then
    -- Kit lines or a cap on locations: includes/split.lua (a plain hold never comes here).
    short = split_source(unpinned, candidates, free, take, tonumber(ARGV[14]) or 0, skus)
  else
    for i = 1, nun do
      local line = unpinned[i]
      local total = 0
      for c = 1, ncand do total = total + math.max(free(line.s, candidates[c]), 0) end
      if allow_split and total >= line.q then
        local left = line.q
        for c = 1, ncand do
          if left == 0 then break end
          local loc = candidates[c]
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
          for c = 1, ncand do have = math.max(have, free(line.s, candidates[c])) end
        end
        if have < line.q then
          short[#short + 1] = {sku = skus[line.s], requested = line.q, available = have}
        end
      end
    end
    if #short == 0 and not allow_split then
      -- Every line fits somewhere, but no one location serves the whole hold: name them all,
      -- each with its best location.
      for i = 1, nun do
        local line = unpinned[i]
        local have = 0
        for c = 1, ncand do have = math.max(have, free(line.s, candidates[c])) end
        short[#short + 1] = {sku = skus[line.s], requested = line.q, available = have}
      end
    end
  end
end

if #short > 0 then return hold_create_refuse(now, {'insufficient', cjson.encode(short)}) end

-- The writes. Each channel's total of a sku is taken before the sku's first write and then
-- moved by each change it sees (what includes/state.lua does); channels are walked in the
-- order of pairs(channels), once per location they list, as state_seers() orders them.
local totals = {}
local lapsed_at_once = count_until <= now
local out, orders = {}, {}
for k = 1, norder do
  local si, loc = order_s[k], order_l[k]
  local a = avail[si]
  local t = totals[si]
  if not t then
    t = {}
    for id, ch in pairs(channels) do
      local locs, sum = ch[2], 0
      for i = 1, #locs do sum = sum + a[locs[i]] end
      t[id] = sum
    end
    totals[si] = t
  end
  local q = taken[si][loc]
  -- on_hand, committed and safety_stock stay the text they were read as (written by '%d':
  -- the same text format() gives); only held is formatted, one sprintf instead of four.
  local o, h, c, s = match(raw[si][at[loc]], POS)
  h = h + q
  rcall('HSET', KEYS[2 * si + 2], loc, o .. ':' .. format('%d', h) .. ':' .. c .. ':' .. s)
  local ex = lapsed[si]
  local gone = ex[loc] or 0
  if lapsed_at_once then
    gone = gone + q
    ex[loc] = gone
  end
  local available = pos_available(o, h, gone, pos_operand(c), pos_operand(s))
  local delta = available - a[loc]
  a[loc] = available
  local moved = nil
  for id, ch in pairs(channels) do
    local locs = ch[2]
    for i = 1, #locs do
      if locs[i] == loc then
        local b = t[id]
        t[id] = b + delta
        moved = event_channel(moved, id, b, b + delta, ch, skus[si])
      end
    end
  end
  local event_id = event_add(stream_key, min_id, 'hold.reserved', skus[si], loc, now, o,
                             h - gone, c, s, available, moved, 'hold', hold_id)
  -- The line's member carries its event's order in the partition (ms * 1000 + seq), so
  -- "newest first" holds even within one ms (shortfall.lua); the record keeps it (`orders`).
  local order = line_order(event_id)
  orders[k] = order
  rcall('ZADD', KEYS[2 * si + 3], count_until, line_member(order, hold_id, loc, q))
  -- What cjson.encode({sku =, location =, quantity =}) writes, keys in its order; skus and
  -- locations are identifiers: nothing to escape.
  out[k] = '{"location":"' .. loc .. '","quantity":' .. format('%d', q) .. ',"sku":"' ..
           skus[si] .. '"}'
end

local lines_json, orders_text
if norder == 1 then
  lines_json, orders_text = '[' .. out[1] .. ']', orders[1]
else
  lines_json, orders_text = '[' .. table.concat(out, ',') .. ']', table.concat(orders, ',')
end
rcall('HSET', hold_key, 'status', ARGV[3], 'channel', ARGV[6], 'reference', ARGV[7],
      'created_at', now, 'updated_at', now, 'expires_at', expires_at,
      'count_until', count_until, 'lines', lines_json, 'orders', orders_text, 'parts', ARGV[8],
      'owner', ARGV[16])
if deadline then rcall('HSET', hold_key, 'deadline', deadline) end
rcall('ZADD', expiry_key, deadline or count_until, hold_id)
-- The listing index and metadata (GET /v1/holds): one ZADD; metadata only when given.
hold_index_add(KEYS[2 * nskus + 4], hold_key, ARGV[16], now, hold_id, ARGV[18])
-- A keyed create's claim and response, stored with the change (no completion call;
-- idempotency.lua).
if idem_fp ~= '' then
  idem_finish(now, '201', IDEM_HOLD_CREATED .. cjson.encode({hold_id, ARGV[3], ARGV[6],
              ARGV[7], format('%d', now), format('%d', expires_at), lines_json,
              ARGV[18] or ''}))
end
return {'ok', lines_json, now, expires_at}
