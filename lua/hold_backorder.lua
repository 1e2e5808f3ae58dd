-- Reserve a hold that may wait for stock on its way (`allow_backorder`), or one partition's
-- part of a multi-partition one: every line takes on-hand units first, then units of supply
-- lines whose eta is not after needed_by, earliest eta first; all or nothing. Writes the
-- positions, the hold-line index, the promises, the hold record and one event per changed
-- position in one atomic step. Holds without allow_backorder never come here
-- (hold_reserve.lua): its store time is unchanged.
--
-- A part of a multi-partition hold is reserved `pending` (the two-phase protocol of
-- hold_reserve.lua, app/domain/hold_parts.py): its deadline is now + the pending TTL (the
-- record's `deadline`, its expiry-index score), and its on-hand lines (hx) and its promises
-- (px) count until that deadline + the pending grace (`count_until`); hold_confirm.lua moves
-- both to expires_at, hold_abort.lua and hold_rollback.lua give both back.
--
-- The sourcing rule (docs/architecture.md, "Future supply and promising"): a line pinned to a
-- location uses that location only; an unpinned line uses the candidates, and takes on-hand
-- units everywhere before future supply anywhere: first one candidate with the whole line
-- on hand (best first), else on-hand units split over the candidates in order, then supply of
-- any candidate, earliest eta first (ties: location, then supply id). A backorder line may so
-- be split across locations and between on-hand and supply; each promised part is a line of
-- the hold's `promises` with its `available_from` (the eta it waits for).
--
-- Channel rules (includes/channel_rules.lua, docs/architecture.md "Channel rules"): through a
-- channel with a rule, the on-hand units a hold takes of a sku are at most the channel's
-- figure (its buffer kept back, as in hold_reserve.lua); future supply is not buffered (what
-- the channel's `incoming` shows); an excluded sku gets nothing, on hand or promised.
--
-- KEYS[1] hold record  os:{P}:hold:<id>
-- KEYS[2] expiry index os:{P}:expiry
-- KEYS[3] event stream os:{P}:events
-- KEYS[4i .. 4i + 3] for the i-th sku of ARGV[9]: os:{P}:pos:<sku>, os:{P}:hx:<sku> (its hold
--          lines, includes/position.lua line_member), os:{P}:sup:<sku>, os:{P}:px:<sku>
-- KEYS[4n + 4] (n = #skus) the partition's holds listing index os:{P}:hl (hold_index.lua)
--
-- ARGV[1]  clock offset, ms (0; see includes/clock.lua)
-- ARGV[2]  hold id
-- ARGV[3]  TTL, ms: expires_at = now + TTL
-- ARGV[4]  channel ("" for none)
-- ARGV[5]  reference ("" for none)
-- ARGV[6]  parts: comma-separated partitions of the whole hold, its home partition first
-- ARGV[7]  event retention, ms (MINID trimming)
-- ARGV[8]  lines JSON: [{"s": sku index (1-based), "q": quantity, "l": location?}, ...]
-- ARGV[9]  skus JSON: ["sku", ...] naming the key groups in order
-- ARGV[10] candidate locations JSON, best first, for lines without a location
-- ARGV[11] channels JSON {id: [low_stock_threshold, [locations], rule?]} that see the
--          candidates (includes/channel_rules.lua), the hold's channel among them
-- ARGV[12] owner: the API key name that creates the hold ("" anonymous)
-- ARGV[13] needed_by, ms (0: any eta)
-- ARGV[14] metadata JSON object ("" for none: then nothing more is written)
-- ARGV[15] status to create: "active", or "pending" for a part awaiting confirmation
-- ARGV[16] pending TTL, ms: a pending part's deadline is now + this (ignored for "active")
-- ARGV[17] pending grace, ms: a pending part counts until its deadline + this (count_until)
-- KEYS[last], ARGV[18..20]: the Idempotency-Key claim (includes/idempotency.lua), checked
--          first and written with the outcome (includes/hold_create.lua)
--
-- Replies:
--   {"ok", lines JSON [{"sku","location","quantity"}], created_at, expires_at,
--    promises JSON [{"sku","location","supply_id","quantity","available_from"}]}  reserved
--   {"exists", status}                                  a hold with this id already exists
--   {"needed_by_past"}                                  needed_by is not after now: nothing changed
--   {"insufficient", JSON [{"sku","requested","available","location"?}]}  nothing changed
--   {"idem", ...}                                       the claim's answer (idempotency.lua)
-- A keyed "ok" has stored its response in the claim's record (idem_finish: 201, the deferred
-- form IDEM_HOLD_CREATED with the promises): the request needs no idempotency_complete.lua
-- call; any other keyed reply but the claim's own has taken the claim (in flight). Only a
-- one-partition hold passes a claim (a multi-partition create claims first).

local rcall = redis.call
--!include clock.lua
--!include state.lua
--!include promise.lua
--!include hold_create.lua
--!include hold_index.lua

local hold_key, expiry_key, stream_key = KEYS[1], KEYS[2], KEYS[3]
local now = clock_now(ARGV[1])
local stop = hold_create_start(hold_key, now)
if stop then return stop end
local needed_by = tonumber(ARGV[13])
if needed_by ~= 0 and needed_by <= now then
  return hold_create_refuse(now, {'needed_by_past'})
end

local hold_id = ARGV[2]
local expires_at = now + tonumber(ARGV[3])
local status = ARGV[15] == 'pending' and 'pending' or 'active'
local deadline = status == 'pending' and now + tonumber(ARGV[16]) or nil
local count_until = deadline and deadline + tonumber(ARGV[17]) or expires_at
local min_id = clock_min_id(now, ARGV[7])
local lines = cjson.decode(ARGV[8])
local skus = cjson.decode(ARGV[9])
local candidates = cjson.decode(ARGV[10])
local channels = cjson.decode(ARGV[11])
local seers = state_seers(channels)

local function key(si, k) return KEYS[3 + 4 * (si - 1) + k] end

local pinned = {}
for i = 1, #lines do if lines[i].l then pinned[#pinned + 1] = lines[i].l end end
for i = 1, #candidates do pinned[#pinned + 1] = candidates[i] end
local read_locs = state_locations(pinned, channels)

local states, supplies, newest, taken, promised = {}, {}, {}, {}, {}
for si = 1, #skus do
  states[si] = state_load(key(si, 1), key(si, 2), now, read_locs)
  supplies[si], newest[si] = supply_lines(key(si, 3), key(si, 4), now)
  taken[si], promised[si] = {}, {}
end

-- Channel rules: cap[si], the on-hand units the hold may take of a sku through its channel
-- (nil: no rule); held[si] the on-hand units taken of it so far.
local hold_channel = channels[ARGV[4]]
local rule_channel = hold_channel and hold_channel[3] and hold_channel or nil
local cap, held = {}, {}
if rule_channel then
  for si = 1, #skus do
    local a = {}
    for _, loc in ipairs(rule_channel[2]) do a[loc] = state_available(states[si], loc) end
    cap[si] = channel_limit(rule_channel, skus[si], a)
  end
end

local function free(si, loc)
  local n = state_available(states[si], loc) - (taken[si][loc] or 0)
  if cap[si] then return math.min(n, cap[si] - (held[si] or 0)) end
  return n
end

-- On-hand allocations in the order first taken, and promises, one per (sku, supply line).
local order, porder = {}, {}
local function take(si, loc, q)
  if q <= 0 then return end
  if not taken[si][loc] then order[#order + 1] = {si, loc} end
  taken[si][loc] = (taken[si][loc] or 0) + q
  held[si] = (held[si] or 0) + q
end
local function promise(si, l, q)
  if q <= 0 then return end
  if not promised[si][l.line] then porder[#porder + 1] = {si, l} end
  promised[si][l.line] = (promised[si][l.line] or 0) + q
end

local short = {}
for i = 1, #lines do
  local line = lines[i]
  local si, left = line.s, line.q
  local locs = line.l and {line.l} or candidates
  -- An excluded sku: no location, so nothing on hand or promised (short, available 0).
  if rule_channel and channel_excludes(rule_channel, skus[si]) then locs = {} end
  local allowed = {}
  for c = 1, #locs do allowed[locs[c]] = true end
  for c = 1, #locs do  -- one location with the whole line on hand, best first
    if free(si, locs[c]) >= left then take(si, locs[c], left) left = 0 break end
  end
  for c = 1, #locs do  -- else on-hand units everywhere
    if left == 0 then break end
    local n = math.min(left, math.max(free(si, locs[c]), 0))
    take(si, locs[c], n)
    left = left - n
  end
  for _, l in ipairs(supplies[si]) do  -- then future supply, earliest eta first
    if left == 0 then break end
    if allowed[l.location] and promise_fits(l.eta, needed_by) then
      local n = math.min(left, l.free - (promised[si][l.line] or 0))
      if n > 0 then promise(si, l, n) left = left - n end
    end
  end
  if left > 0 then
    short[#short + 1] = {sku = skus[si], location = line.l, requested = line.q,
                         available = line.q - left}
  end
end
if #short > 0 then return hold_create_refuse(now, {'insufficient', cjson.encode(short)}) end

local out, orders = {}, {}
for k = 1, #order do
  local si, loc = order[k][1], order[k][2]
  local s, q = states[si], taken[si][loc]
  local before = state_before(s, channels, seers, loc)
  local p = state_pos(s, loc)
  state_write(s, loc, {on_hand = p.on_hand, held = p.held + q, committed = p.committed,
                       safety = p.safety})
  local event_id = state_emit(stream_key, min_id, now, channels, seers, 'hold.reserved',
                              skus[si], loc, s, before, 'hold', hold_id)
  orders[k] = line_order(event_id)
  rcall('ZADD', key(si, 2), count_until, line_member(orders[k], hold_id, loc, q))
  out[k] = {sku = skus[si], location = loc, quantity = q}
end
local promises = {}
for k = 1, #porder do
  local si, l = porder[k][1], porder[k][2]
  local q = promised[si][l.line]
  rcall('HSET', key(si, 4), hold_id .. '|' .. l.line,
        promise_value(q, count_until, promise_order(now, newest[si]), needed_by))
  promises[k] = {sku = skus[si], location = l.location, supply_id = l.supply_id, quantity = q,
                 available_from = l.eta}
end

local lines_json = #out > 0 and cjson.encode(out) or '[]'
local promises_json = #promises > 0 and cjson.encode(promises) or '[]'
rcall('HSET', hold_key, 'status', status, 'channel', ARGV[4], 'reference', ARGV[5],
      'created_at', now, 'updated_at', now, 'expires_at', expires_at,
      'count_until', count_until, 'lines', lines_json, 'orders', table.concat(orders, ','),
      'parts', ARGV[6],
      'owner', ARGV[12], 'promises', promises_json, 'needed_by', needed_by)
if deadline then rcall('HSET', hold_key, 'deadline', deadline) end
rcall('ZADD', expiry_key, deadline or count_until, hold_id)
hold_index_add(KEYS[4 * #skus + 4], hold_key, ARGV[12], now, hold_id, ARGV[14])
-- A keyed create's claim and response, stored with the change (no completion call;
-- idempotency.lua).
idem_finish(now, '201', IDEM_HOLD_CREATED .. cjson.encode({hold_id, status, ARGV[4],
            ARGV[5], string.format('%d', now), string.format('%d', expires_at), lines_json,
            ARGV[14], promises_json}))
return {'ok', lines_json, now, expires_at, promises_json}
