-- Position helpers. A position is one field of the sku's hash: field = location,
-- value = "on_hand:held:committed:safety_stock". `held` counts every hold line not yet
-- released, committed, or reaped — including lines whose hold has expired but that the
-- reaper has not reached yet. Readers subtract those with expired_by_location(), so an expired
-- hold never counts against availability, whether or not the reaper has run.
local POS_PATTERN = '^(%-?%d+):(%-?%d+):(%-?%d+):(%-?%d+)$'

-- THE availability rule: what a position can still promise. `lapsed`: units of its hold lines
-- whose hold expired (still in `held` until the reaper returns them). The arguments may be the
-- position's text fields (Lua coerces them). app/domain/stock.py follows the same rule
-- (tests/lua/test_rules.py checks both on the same positions).
local function pos_available(on_hand, held, lapsed, committed, safety)
  local available = on_hand - (held - lapsed) - committed - safety
  if available < 0 then return 0 end
  return available
end

-- A position field's text as an operand of pos_available(): "0" as the number 0. Lua turns a
-- string operand into a number with strtod (~1,300 instructions each), and committed,
-- safety_stock and often held are 0.
local function pos_operand(text)
  if text == '0' then return 0 end
  return text
end

-- pos_available() of a position's text `v` (an HMGET value), `lapsed` its lapsed units.
local function pos_available_text(v, lapsed)
  local o, h, c, s = string.match(v, POS_PATTERN)
  return pos_available(o, pos_operand(h), lapsed, pos_operand(c), pos_operand(s))
end

local function pos_parse(v)
  local o, h, c, s = string.match(v, POS_PATTERN)
  return {on_hand = tonumber(o), held = tonumber(h), committed = tonumber(c), safety = tonumber(s)}
end

local function pos_read(pos_key, location)
  local v = rcall('HGET', pos_key, location)
  if not v then return nil end
  return pos_parse(v)
end

-- string.format, not `..`: a number concatenated goes through "%.14g" and an extra string
-- each, several times the cost (the counters are integers, so the text is the same).
local function pos_write(pos_key, location, p)
  rcall('HSET', pos_key, location,
        string.format('%d:%d:%d:%d', p.on_hand, p.held, p.committed, p.safety))
end

-- A hold line's member of its sku's line index (hx, os:{P}:hx:<sku>):
-- "<order>|<hold id>|<location>|<quantity>". One sorted set holds every open line: an active
-- or pending line scored by its hold's count_until (when it stops counting), a committed one by
-- LINE_COMMITTED (+inf: it never lapses). `order` is when the line was made, 16 digits (the ms
-- of its event, then the event's sequence as three: line_order()), so the members sort by it:
-- the shortfall names holds newest first from the members alone (shortfall.lua). The hold
-- record keeps each line's order (`orders`, hold.lua hold_orders) to name its members.
local LINE_COMMITTED = '+inf'

local function line_member(order, hold_id, location, qty)
  return order .. '|' .. hold_id .. '|' .. location .. '|' .. qty
end

-- A line's order: its event's order in the partition, ms * 1000 + seq (seq capped at 999),
-- from the event id "<ms>-<seq>". Built as text (the digits of ms, then seq's as three): no
-- strtod, and 16 digits, so text order is numeric order.
local function line_order(event_id)
  local dash = string.find(event_id, '-', 1, true)
  local seq = string.sub(event_id, dash + 1)
  local n = #seq
  if n == 1 then
    seq = '00' .. seq
  elseif n == 2 then
    seq = '0' .. seq
  elseif n > 3 then
    seq = '999'
  end
  return string.sub(event_id, 1, dash - 1) .. seq
end

-- The order of a line made at `now` (ms) without an event of its own (supply_receive.lua),
-- or of a line of a record written before `orders` (hold_orders): now * 1000, as text.
local function line_order_at(now)
  return string.format('%d', now) .. '000'
end

-- A member's parts (the quantity as a number), then its order.
local function line_parse(member)
  local order, hold, loc, qty = string.match(member, '^(%d+)|(.*)|(.*)|(%d+)$')
  return hold, loc, tonumber(qty), order
end

-- Units of hold lines on this sku whose hold expired at or before `now` (lapsed), by location.
local function expired_by_location(hx_key, now)
  local by_loc = {}
  local members = rcall('ZRANGEBYSCORE', hx_key, '-inf', now)
  for i = 1, #members do
    local _, loc, qty = line_parse(members[i])
    by_loc[loc] = (by_loc[loc] or 0) + qty
  end
  return by_loc
end

-- What clients see: held without expired lines, and available (pos_available).
local function pos_view(p, expired)
  local lapsed = expired or 0
  return {on_hand = p.on_hand, held = p.held - lapsed, committed = p.committed,
          safety = p.safety,
          available = pos_available(p.on_hand, p.held, lapsed, p.committed, p.safety)}
end
