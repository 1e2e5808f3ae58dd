-- Release or fulfil some units of some lines of a one-partition hold (partial release and
-- fulfil): all the requested lines or none. Each changed position gets its event; the hold
-- keeps its status while any line has units left, and takes the status of the operation that
-- closes its last line. The record's `lines` stay the open units (what every other script and
-- the audit count); `closed` (JSON [{sku, location, quantity, as}], `as` "released" or
-- "fulfilled") adds up what partial operations closed.
--
-- A part of a multi-partition hold is changed the same way, but never closed here: a part whose
-- lines all closed keeps its status (with no open unit), and the service closes the whole hold
-- once no part has an open unit (HoldService.change_lines), so the home part still decides.
--
-- KEYS and ARGV[1..7]: the transition layout (see hold_commit.lua and includes/transition.lua).
-- ARGV[8] "release" (an active or committed hold) or "fulfil" (a committed hold)
-- ARGV[9] lines JSON [{"sku", "location", "quantity"}], each (sku, location) once
--
-- The last key and the last three ARGV: the Idempotency-Key claim (includes/idempotency.lua),
-- taken before anything else; its replies {"idem", ...} come back unchanged.
--
-- Replies: {"ok", status} | {"not_found"} | {"keys_mismatch"} | {"expired"}
--          | {"invalid", status} | {"replayed", status} (ARGV[6] > 0: the marker exists)
--          | {"unknown_line", JSON line} (not a line of the hold)
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
local open = {}
for i, line in ipairs(h.lines_t) do open[line.sku .. '|' .. line.location] = i end
local closed = h.closed and cjson.decode(h.closed) or {}
local requested = cjson.decode(ARGV[9])
if #requested == 0 then return transition_done(h.status) end  -- the home part's claim only
for _, want in ipairs(requested) do
  local i = open[want.sku .. '|' .. want.location]
  if not i then
    local known = false
    for _, c in ipairs(closed) do
      known = known or (c.sku == want.sku and c.location == want.location)
    end
    if not known then return {'unknown_line', cjson.encode(want)} end
    return {'over_quantity', cjson.encode(want), 0}
  end
  if want.quantity > h.lines_t[i].quantity then
    return {'over_quantity', cjson.encode(want), h.lines_t[i].quantity}
  end
end

-- A line index member (hx, ho) moves to the line's new quantity with its score (gone at 0).
local function move(key, old, new)
  local score = rcall('ZSCORE', key, old)
  if not score then return end
  rcall('ZREM', key, old)
  if new then rcall('ZADD', key, score, new) end
end

local as = op == 'fulfil' and 'fulfilled' or 'released'
local ev_type = 'hold.' .. as
for _, want in ipairs(requested) do
  local line = h.lines_t[open[want.sku .. '|' .. want.location]]
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
  local old = line_member(ctx.hold_id, line.location, line.quantity)
  local new = left > 0 and line_member(ctx.hold_id, line.location, left) or nil
  if h.status == 'active' then move(k[2], old, new) end
  move(k[3], old, new)
  line.quantity = left
  local merged = false
  for _, c in ipairs(closed) do
    if c.sku == line.sku and c.location == line.location and c.as == as then
      c.quantity = c.quantity + q
      merged = true
    end
  end
  if not merged then
    closed[#closed + 1] = {sku = line.sku, location = line.location, quantity = q, as = as}
  end
  emit_change(ctx.stream_key, ctx.min_id, ctx.now, ctx.channels, ev_type, line.sku,
              line.location, k[1], k[2], before, 'hold', ctx.hold_id)
end

local left = {}
for _, line in ipairs(h.lines_t) do
  if line.quantity > 0 then left[#left + 1] = line end
end
-- cjson writes an empty table as {}: an empty list is written as such.
local lines_json = #left > 0 and cjson.encode(left) or '[]'
rcall('HSET', hold_key, 'lines', lines_json, 'closed', cjson.encode(closed),
      'updated_at', ctx.now)
if #left > 0 or multi then return transition_done(h.status) end
rcall('HSET', hold_key, 'status', as)
rcall('ZREM', expiry_key, ctx.hold_id)
rcall('EXPIRE', hold_key, terminal_ttl)
return transition_done(as)
