-- Apply one `receipt` stock event that names a supply line: its units move from the supply
-- line to on_hand, and the units promised from that line (oldest promise first) become
-- on-hand units of the same holds (held, counting until the hold's count_until, for an active
-- hold or a pending part of a multi-partition one; committed for a committed hold), so
-- availability moves only by the receipt's unpromised units. A receipt larger than the line
-- closes it and the excess goes to on_hand too; a smaller one leaves the rest of the line
-- open. The event identity (location, id) is applied once, as in stock_events.lua.
--
-- KEYS[1] event stream         os:{P}:events
-- KEYS[2] skus of partition    os:{P}:skus
-- KEYS[3] position hash        os:{P}:pos:<sku>
-- KEYS[4] open hold lines      os:{P}:hx:<sku> (includes/position.lua line_member)
-- KEYS[5] supply lines         os:{P}:sup:<sku>
-- KEYS[6] promises             os:{P}:px:<sku>
-- KEYS[7] seen record          os:{P}:seen:<location>|<event id>
-- KEYS[8] earlier seen record  os:{P}:seen:<event id> (read only: duplicate if set)
-- KEYS[9..] the hold record of each hold promised from the line: os:{P}:hold:<id>
--
-- ARGV[1] clock offset, ms (0; see includes/clock.lua)
-- ARGV[2] event retention, ms (MINID trimming)
-- ARGV[3] seconds to keep the seen record
-- ARGV[4] channels JSON {id: [low_stock_threshold, [locations]]} that see the location
-- ARGV[5] event id
-- ARGV[6] sku
-- ARGV[7] location
-- ARGV[8] quantity (>= 1)
-- ARGV[9] fingerprint
-- ARGV[10] supply id
-- ARGV[11] hold ids JSON, naming KEYS[9..] in order
--
-- Replies: {status, on_hand, held, committed, safety_stock, available}, status "applied",
--          "duplicate" or "id_reused" (the position as it is now, as stock_events.lua);
--          {"unknown_supply"} no such supply line: nothing changed;
--          {"retry"} a hold promised from the line is not in KEYS (promised meanwhile):
--          nothing changed, read the promises again

local rcall = redis.call
--!include clock.lua
--!include hold.lua

local stream_key, skus_key, pos_key, hx_key, sup_key, px_key = unpack(KEYS, 1, 6)
local seen_key, seen_before_key = KEYS[7], KEYS[8]
local now = clock_now(ARGV[1])
local min_id = clock_min_id(now, ARGV[2])
local channels = cjson.decode(ARGV[4])
local event_id, sku, location, quantity, fp = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]),
                                              ARGV[9]
local field = location .. '|' .. ARGV[10]

local function position_reply(status)
  local p = pos_read(pos_key, location) or {on_hand = 0, held = 0, committed = 0, safety = 0}
  local v = pos_view(p, expired_by_location(hx_key, now)[location])
  return {status, v.on_hand, v.held, v.committed, v.safety, v.available}
end

if rcall('EXISTS', seen_before_key) == 1 then return position_reply('duplicate') end
local seen = rcall('GET', seen_key)
if seen then return position_reply(seen == fp and 'duplicate' or 'id_reused') end
local raw = rcall('HGET', sup_key, field)
if not raw then return {'unknown_supply'} end

local hold_keys = {}
for i, id in ipairs(cjson.decode(ARGV[11])) do hold_keys[id] = KEYS[8 + i] end
local due = {}
for _, pr in ipairs(promises_open(px_key, now)) do
  if pr.line == field then
    if not hold_keys[pr.hold] then return {'retry'} end
    due[#due + 1] = pr
  end
end

-- A hold's on-hand line at this location grows by n (its index member carries the quantity,
-- so it is replaced, keeping the line's order; a new line's order is now's), and its promise
-- from the line shrinks by n.
local function move_to_on_hand(pr, n, p)
  local key = hold_keys[pr.hold]
  local h = hold_load(key)
  -- A pending part's new units count as its other lines do (until its count_until), and
  -- follow it: confirmed with it, or returned when it is rolled back or aborted.
  local held = h.status == 'active' or h.status == 'pending'
  local lines, orders, had, order = h.lines_t, hold_orders(h), 0, nil
  for i, l in ipairs(lines) do
    if l.sku == sku and l.location == location then
      had, order = l.quantity, orders[i]
      l.quantity = had + n
    end
  end
  if had == 0 then
    order = line_order_at(now)
    lines[#lines + 1] = {sku = sku, location = location, quantity = n}
    orders[#lines] = order
  end
  rcall('ZREM', hx_key, line_member(order, pr.hold, location, had))
  rcall('ZADD', hx_key, held and h.count_until or LINE_COMMITTED,
        line_member(order, pr.hold, location, had + n))
  if held then
    p.held = p.held + n
  else
    p.committed = p.committed + n
  end
  local promises = {}
  for _, x in ipairs(cjson.decode(h.promises)) do
    if x.sku == sku and x.location == location and x.supply_id == ARGV[10] then
      x.quantity = x.quantity - n
    end
    if x.quantity > 0 then promises[#promises + 1] = x end
  end
  rcall('HSET', key, 'lines', cjson.encode(lines), 'orders', table.concat(orders, ','),
        'updated_at', now,
        'promises', #promises > 0 and cjson.encode(promises) or '[]')
  if n == pr.units then
    rcall('HDEL', px_key, pr.field)
  else
    rcall('HSET', px_key, pr.field,
          promise_value(pr.units - n, pr.count_until, pr.created, pr.needed_by))
  end
end

local before = track(channels, pos_key, hx_key, location, now)
local p = pos_read(pos_key, location) or {on_hand = 0, held = 0, committed = 0, safety = 0}
p.on_hand = p.on_hand + quantity
local left = quantity
for _, pr in ipairs(due) do
  if left == 0 then break end
  local n = math.min(left, pr.units)
  move_to_on_hand(pr, n, p)
  left = left - n
end
pos_write(pos_key, location, p)
rcall('SADD', skus_key, sku)
rcall('SET', seen_key, fp, 'EX', ARGV[3])

local d = cjson.decode(raw)
d.q, d.u = math.max(d.q - quantity, 0), now
if d.q == 0 then rcall('HDEL', sup_key, field) else rcall('HSET', sup_key, field, cjson.encode(d)) end
emit_change(stream_key, min_id, now, channels, 'stock.receipt', sku, location, pos_key, hx_key,
            before, 'source_event', event_id)
local v = pos_view(p, expired_by_location(hx_key, now)[location])
local n = event_head('supply.received', sku, location, now, v.on_hand, v.held, v.committed,
                     v.safety, v.available)
n = event_put(n, 'supply', cjson.encode({location = location, supply_id = ARGV[10], type = d.t,
                                         quantity = d.q, eta = d.e, reference = d.r,
                                         received = quantity}))
n = event_put(n, 'source_event', event_id)
event_xadd(stream_key, min_id, n)
return position_reply('applied')
