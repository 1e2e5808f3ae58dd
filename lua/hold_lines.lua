-- Release or fulfil some units of some lines of a one-partition hold (partial release and
-- fulfil): all the requested lines or none. Each changed position gets its event; the hold
-- keeps its status while any line has units left, and takes the status of the operation that
-- closes its last line. The record's `lines` stay the open units (what every other script and
-- the audit count); `closed` (JSON [{sku, location, quantity, as}], `as` "released" or
-- "fulfilled") adds up what partial operations closed.
--
-- A promised line (a backorder hold's units on a supply line: the record's `promises`) is
-- named by its `supply_id` as well and can be released, not fulfilled (its units are not
-- there: the service refuses that first, 409 promise_not_received): the record's `promises`
-- lose the units, and its px entry keeps at most the units still open (unbacked units of a
-- broken promise go first), so backed units go back to the supply line at once; `closed`
-- gets them with their supply_id and available_from. No position changes, so no event (as a whole release's
-- promises). A hold stays open while it has promised units.
--
-- A part of a multi-partition hold is changed the same way, but never closed here: a part whose
-- lines all closed keeps its status (with no open unit), and the service closes the whole hold
-- once no part has an open unit (HoldService.change_lines), so the home part still decides.
--
-- KEYS and ARGV[1..7]: the transition layout (see hold_commit.lua and includes/transition.lua).
-- ARGV[8] "release" (an active or committed hold) or "fulfil" (a committed hold)
-- ARGV[9] lines JSON [{"sku", "location", "quantity", "supply_id"?}], each line once
--
-- The last key and the last three ARGV: the Idempotency-Key claim (includes/idempotency.lua),
-- taken before anything else; its replies {"idem", ...} come back unchanged.
--
-- Replies: {"ok", status} | {"not_found"} | {"keys_mismatch"} | {"expired"}
--          | {"invalid", status} | {"replayed", status} (ARGV[6] > 0: the marker exists)
--          | {"unknown_line", JSON line} (not a line of the hold; a promised line to fulfil)
--          | {"over_quantity", JSON line, open units} (more than the line has open)
-- Nothing changes unless the reply is "ok".

local rcall = redis.call
--!include keyed.lua

local h, keys = keyed_begin()
if not h then return keys end
local multi = string.find(h.parts or '', ',', 1, true)
local op = ARGV[8]
local allowed = op == 'fulfil' and h.status == 'committed'
  or op == 'release' and (h.status == 'active' or h.status == 'committed')
if not allowed then return {'invalid', h.status} end

-- Check every requested line before changing anything.
local open, order_of = {}, {}
local orders = hold_orders(h)
for i, line in ipairs(h.lines_t) do
  open[line.sku .. '|' .. line.location] = i
  order_of[line] = orders[i]
end
local promised = promise_any(h) and cjson.decode(h.promises) or {}
for i, pr in ipairs(promised) do
  open[pr.sku .. '|' .. pr.location .. '|' .. pr.supply_id] = i
end
-- The open line a requested one names: on hand, or promised (with its supply_id).
local function line_of(want)
  if want.supply_id then
    local i = open[want.sku .. '|' .. want.location .. '|' .. want.supply_id]
    return i and promised[i]
  end
  local i = open[want.sku .. '|' .. want.location]
  return i and h.lines_t[i]
end
local closed = h.closed and cjson.decode(h.closed) or {}
local requested = cjson.decode(ARGV[9])
if #requested == 0 then return transition_done(h.status) end  -- the home part's claim only
for _, want in ipairs(requested) do
  local line = line_of(want)
  if want.supply_id and op ~= 'release' then return {'unknown_line', cjson.encode(want)} end
  if not line then
    local known = false
    for _, c in ipairs(closed) do
      known = known or (c.sku == want.sku and c.location == want.location
                        and c.supply_id == want.supply_id)
    end
    if not known then return {'unknown_line', cjson.encode(want)} end
    return {'over_quantity', cjson.encode(want), 0}
  end
  if want.quantity > line.quantity then
    return {'over_quantity', cjson.encode(want), line.quantity}
  end
end

-- A line's index member (hx) moves to the line's new quantity with its score and order (gone
-- at 0).
local function move(key, old, new)
  local score = rcall('ZSCORE', key, old)
  if not score then return end
  rcall('ZREM', key, old)
  if new then rcall('ZADD', key, score, new) end
end

local as = op == 'fulfil' and 'fulfilled' or 'released'
local ev_type = 'hold.' .. as
-- `closed` adds up by (sku, location, supply_id, as).
local function close(line, q)
  for _, c in ipairs(closed) do
    if c.sku == line.sku and c.location == line.location and c.supply_id == line.supply_id
      and c.as == as then
      c.quantity = c.quantity + q
      return
    end
  end
  closed[#closed + 1] = {sku = line.sku, location = line.location, quantity = q, as = as,
                         supply_id = line.supply_id, available_from = line.available_from}
end
-- Release q of the line.quantity units the record promises from a supply line: its px entry
-- keeps at most the units still open (gone at 0). A promise that lost part of its backing
-- (promise_broken) so releases its unbacked units first, as a channel answering the event
-- expects: the backed units stay with the units it keeps.
local pkeys = promise_keys()
local function unpromise(line, q)
  local key = pkeys[line.sku]
  local field = ctx.hold_id .. '|' .. line.location .. '|' .. line.supply_id
  local v = key and rcall('HGET', key, field)
  if not v then return end
  local u, cu, cr, nb = promise_parse(v)
  local keep = math.min(u, line.quantity - q)
  if keep > 0 then
    if keep < u then rcall('HSET', key, field, promise_value(keep, cu, cr, nb)) end
  else
    rcall('HDEL', key, field)
  end
end

for _, want in ipairs(requested) do
  local line = line_of(want)
  if want.supply_id then
    unpromise(line, want.quantity)
    line.quantity = line.quantity - want.quantity
    close(line, want.quantity)
  else
    local k, q = keys[line.sku], want.quantity
    local before = track(ctx.channels, k[1], k[2], line.location, ctx.now)
    local p = pos_read(k[1], line.location) or {on_hand = 0, held = 0, committed = 0, safety = 0}
    if h.status == 'active' then
      p.held = p.held - q
    else
      p.committed = p.committed - q
      if op == 'fulfil' then p.on_hand = p.on_hand - q end
    end
    pos_write(k[1], line.location, p)
    local left = line.quantity - q
    local order = order_of[line]
    local old = line_member(order, ctx.hold_id, line.location, line.quantity)
    local new = left > 0 and line_member(order, ctx.hold_id, line.location, left) or nil
    move(k[2], old, new)
    line.quantity = left
    close(line, q)
    emit_change(ctx.stream_key, ctx.min_id, ctx.now, ctx.channels, ev_type, line.sku,
                line.location, k[1], k[2], before, 'hold', ctx.hold_id)
  end
end

local function still_open(list)
  local out = {}
  for _, line in ipairs(list) do
    if line.quantity > 0 then out[#out + 1] = line end
  end
  return out
end
local left, waiting = still_open(h.lines_t), still_open(promised)
local left_orders = {}
for i, line in ipairs(left) do left_orders[i] = order_of[line] end
-- cjson writes an empty table as {}: an empty list is written as such.
local lines_json = #left > 0 and cjson.encode(left) or '[]'
rcall('HSET', hold_key, 'lines', lines_json, 'orders', table.concat(left_orders, ','),
      'closed', cjson.encode(closed), 'updated_at', ctx.now)
if promise_any(h) then
  rcall('HSET', hold_key, 'promises', #waiting > 0 and cjson.encode(waiting) or '[]')
end
-- A hold with promised units (future supply) still waits for them: it stays open.
if #left > 0 or multi or #waiting > 0 then return transition_done(h.status) end
rcall('HSET', hold_key, 'status', as)
rcall('ZREM', expiry_key, ctx.hold_id)
rcall('EXPIRE', hold_key, terminal_ttl)
return transition_done(as)
