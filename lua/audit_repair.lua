-- Repair one partition for `omnistock audit --fix`: the hold records are the truth. Recompute
-- every position's held and committed from them and rebuild the hold indexes (expiry, hx)
-- and the skus set, all in one atomic step that reads everything itself, so a repair racing
-- live traffic works on the state as it is when it runs, never on the caller's older view.
-- on_hand and safety_stock are never touched. Each position whose counters change gets an
-- `audit.repaired` event (with `previous`, the counters before) like any other change.
-- Holds whose record cannot be read (see audit_readable in includes/audit.lua) are left
-- alone, and so are their index entries; so are position values that do not parse.
--
-- KEYS[1]  expiry index   os:{P}:expiry
-- KEYS[2]  skus set       os:{P}:skus
-- KEYS[3]  event stream   os:{P}:events
-- KEYS[3 + i]  for the i-th hold id of ARGV[1]: os:{P}:hold:<id>
-- KEYS[3 + H + 2j - 1 .. 3 + H + 2j]  for the j-th sku of ARGV[2] (H = number of hold ids):
--          os:{P}:pos:<sku>, os:{P}:hx:<sku>
-- KEYS[3 + H + 2S + k]  for the k-th sku of ARGV[6] (S = number of skus): os:{P}:ho:<sku>,
--          the second line index of a store written before the one line index: dropped
-- A record written before `orders` (a store from before the one line index) is indexed with
-- its created_at as every line's order (hold.lua hold_orders), as every script names it: so
-- this repair upgrades such a store (docs/operations.md "Upgrades").
--
-- ARGV[1] hold ids JSON ["id", ...]: every hold record of the partition the caller found
-- ARGV[2] skus JSON ["sku", ...]: every sku with a position or hold index in the partition
-- ARGV[3] clock offset, ms (0; see includes/clock.lua)
-- ARGV[4] event retention, ms (MINID trimming)
-- ARGV[5] channels JSON {id: [low_stock_threshold, [locations]]}
-- ARGV[6] skus JSON whose `ho` index is in KEYS after the sku pairs (absent: none)
--
-- Replies:
--   {"ok", JSON [change, ...]} with change one of
--     {"kind": "counters", "sku", "location", "before": "o:h:c:s" | false, "after": "o:h:c:s"}
--     {"kind": "index_add" | "index_remove", "index": "expiry" | "hx", "member",
--      "sku"?, "score"?}
--     {"kind": "sku_listed", "sku"}
--     {"kind": "index_dropped", "index": "ho", "sku"}
--     (an empty list comes as {})
--   {"stale", JSON {"holds": [id, ...], "skus": [sku, ...]}}  nothing changed: an index or
--     the skus set names holds or skus the caller did not pass; call again with them

local rcall = redis.call
--!include clock.lua
--!include hold.lua
--!include audit.lua

local L = audit_layout(ARGV[1], ARGV[2])
local now = clock_now(ARGV[3])
local min_id = clock_min_id(now, ARGV[4])
local channels = cjson.decode(ARGV[5])
local S = audit_load(L)
local stale = audit_stale(S)
if stale then return stale end

local HELD = {active = true, pending = true}
local changes = {}
local function note(c) changes[#changes + 1] = c end

-- What the hold records say: units per position, and the members every index should have.
local want = {}          -- sku -> location -> {held, committed}
local want_hx = {}       -- sku -> member -> score (LINE_COMMITTED: a committed line)
local want_expiry = {}   -- hold id -> score
local unreadable = {}    -- hold id -> true: leave it and its index entries alone
for id, h in pairs(S.holds) do
  local open = HELD[h.status] or h.status == 'committed'
  if not audit_readable(h) then
    unreadable[id] = true
  elseif open then
    if HELD[h.status] then  -- a pending part is due at its deadline (settled then)
      want_expiry[id] = tonumber(h.status == 'pending' and h.deadline or h.count_until)
    end
    local orders = hold_orders(h)
    for i, line in ipairs(h.lines_t) do
      local sku, loc, q = line.sku, line.location, tonumber(line.quantity)
      want[sku] = want[sku] or {}
      local w = want[sku][loc] or {held = 0, committed = 0}
      want[sku][loc] = w
      want_hx[sku] = want_hx[sku] or {}
      local member = hold_line_member(h, orders, id, i)
      if HELD[h.status] then
        w.held = w.held + q
        want_hx[sku][member] = tonumber(h.count_until)
      else
        w.committed = w.committed + q
        want_hx[sku][member] = tonumber(LINE_COMMITTED)
      end
    end
  end
end

-- A score as a reply's JSON carries it (cjson cannot write inf).
local function score_json(score)
  if score == math.huge then return LINE_COMMITTED end
  return score
end

-- Write a member the records back with its score, and say so.
local function index_add(name, key, member, sku, score)
  rcall('ZADD', key, score_json(score), member)
  note({kind = 'index_add', index = name, member = member, sku = sku, score = score_json(score)})
end

-- Drop members the records do not back and add the missing ones (with the right score).
local function fix_index(name, key, flat, wanted, sku, check_score)
  local have = {}
  for i = 1, #flat, 2 do
    local member, score = flat[i], tonumber(flat[i + 1])
    local hold = line_parse(member)
    if name == 'expiry' then hold = member end
    have[member] = true
    local expected = wanted[member]
    if not unreadable[hold] then
      if expected == nil then
        rcall('ZREM', key, member)
        note({kind = 'index_remove', index = name, member = member, sku = sku})
      elseif check_score and score ~= expected then
        index_add(name, key, member, sku, expected)
      end
    end
  end
  for member, score in pairs(wanted) do
    if not have[member] then index_add(name, key, member, sku, score) end
  end
end

fix_index('expiry', L.expiry, S.expiry, want_expiry, nil, true)

local listed = {}
for _, sku in ipairs(rcall('SMEMBERS', L.skus_set)) do listed[sku] = true end

for _, sku in ipairs(L.skus) do
  local pos_key, hx_key = L.sku[sku][1], L.sku[sku][2]
  local expected = want[sku] or {}
  -- Positions whose counters differ from the records, with the availability before.
  local stored = {}  -- location -> position, false (none yet) or 'unreadable' (left alone)
  local flat = rcall('HGETALL', pos_key)
  for i = 1, #flat, 2 do
    local p = pos_read(pos_key, flat[i])
    stored[flat[i]] = p.on_hand and p or 'unreadable'
  end
  for loc in pairs(expected) do
    if stored[loc] == nil then stored[loc] = false end
  end
  local todo = {}
  for loc, p in pairs(stored) do
    local w = expected[loc] or {held = 0, committed = 0}
    if p ~= 'unreadable' and (not p or p.held ~= w.held or p.committed ~= w.committed) then
      local before = track(channels, pos_key, hx_key, loc, now)
      before.recount = true  -- indexes and other positions change before its event
      todo[#todo + 1] = {loc = loc, p = p, w = w, before = before}
    end
  end
  fix_index('hx', hx_key, S.idx[sku].hx, want_hx[sku] or {}, sku, true)
  for _, t in ipairs(todo) do
    local p = t.p or {on_hand = 0, held = 0, committed = 0, safety = 0}
    local previous = t.p and (p.on_hand .. ':' .. p.held .. ':' .. p.committed .. ':' .. p.safety)
    p.held, p.committed = t.w.held, t.w.committed
    pos_write(pos_key, t.loc, p)
    emit_change(L.stream, min_id, now, channels, 'audit.repaired', sku, t.loc, pos_key, hx_key,
                t.before, 'previous', previous or '')
    note({kind = 'counters', sku = sku, location = t.loc, before = previous or false,
          after = p.on_hand .. ':' .. p.held .. ':' .. p.committed .. ':' .. p.safety})
  end
  if not listed[sku] and rcall('HLEN', pos_key) > 0 then
    rcall('SADD', L.skus_set, sku)
    note({kind = 'sku_listed', sku = sku})
  end
end

local first_legacy = 3 + #L.hold_ids + 2 * #L.skus
for k, sku in ipairs(cjson.decode(ARGV[6] or '[]')) do
  if rcall('DEL', KEYS[first_legacy + k]) == 1 then
    note({kind = 'index_dropped', index = 'ho', sku = sku})
  end
end

return {'ok', cjson.encode(changes)}
