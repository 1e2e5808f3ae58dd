-- Create, update or cancel one supply line (stock on its way to a location), break the
-- promises it can no longer keep, and emit its events, in one atomic step.
--
-- KEYS[1] supply lines        os:{P}:sup:<sku>
-- KEYS[2] promises            os:{P}:px:<sku>
-- KEYS[3] position hash       os:{P}:pos:<sku>  (the events carry the location's position)
-- KEYS[4] active hold lines   os:{P}:hx:<sku>
-- KEYS[5] event stream        os:{P}:events
--
-- ARGV[1] clock offset, ms (0; see includes/clock.lua)
-- ARGV[2] sku
-- ARGV[3] location
-- ARGV[4] supply id
-- ARGV[5] type (purchase_order | in_transit | production; ignored when cancelling)
-- ARGV[6] quantity (0: cancel)
-- ARGV[7] eta, ms (ignored when cancelling)
-- ARGV[8] reference ("" for none)
-- ARGV[9] event retention, ms (MINID trimming)
-- ARGV[10] horizon, ms: the latest eta accepted is now + this
-- KEYS[6], ARGV[11..13]: the Idempotency-Key claim (includes/idempotency.lua), taken first
--
-- Replies:
--   {"ok", action, line JSON, broken JSON}  action: created | updated | cancelled | unchanged;
--        line: {location, supply_id, type, quantity, eta, reference, promised} (eta ms);
--        broken: [{"hold", "units"}] promises that lost their backing (also in the
--        `promise_broken` event)
--   {"not_found"}    cancelling a line that does not exist: nothing changed
--   {"eta_past"}     eta not after the store's now: nothing changed
--   {"eta_beyond"}   eta after now + horizon: nothing changed
--   {"idem", ...}    the claim's answer (includes/idempotency.lua): nothing changed

local rcall = redis.call
--!include clock.lua
--!include event.lua
--!include promise.lua
--!include idempotency.lua

local sup_key, px_key, pos_key, hx_key, stream_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = clock_now(ARGV[1])
local sku, location, supply_id = ARGV[2], ARGV[3], ARGV[4]
local quantity, eta = tonumber(ARGV[6]), tonumber(ARGV[7])
local field = location .. '|' .. supply_id

local stop = idem_claim(now)
if stop then return stop end
if quantity > 0 then
  if eta <= now then return {'eta_past'} end
  if eta > now + tonumber(ARGV[10]) then return {'eta_beyond'} end
end

local raw = rcall('HGET', sup_key, field)
local cur = raw and cjson.decode(raw)
if quantity == 0 and not cur then return {'not_found'} end

local action, doc
if quantity == 0 then
  action, doc = 'cancelled', cur
  rcall('HDEL', sup_key, field)
else
  doc = {t = ARGV[5], q = quantity, e = eta, r = ARGV[8], c = cur and cur.c or now, u = now}
  if cur and cur.t == doc.t and cur.q == doc.q and cur.e == doc.e and cur.r == doc.r then
    action = 'unchanged'
  else
    action = cur and 'updated' or 'created'
    rcall('HSET', sup_key, field, cjson.encode(doc))
  end
end

-- Keep the oldest promises the line can still serve (enough units, an eta they can wait for);
-- the newest lose their backing first, as in a shortfall.
local left = quantity
local promised, broken = 0, {}
local list = promises_open(px_key, now)
for _, pr in ipairs(list) do
  if pr.line == field then
    local keep = 0
    if quantity > 0 and promise_fits(eta, pr.needed_by) then keep = math.min(pr.units, left) end
    left = left - keep
    promised = promised + keep
    if keep < pr.units then
      broken[#broken + 1] = {hold = pr.hold, units = pr.units - keep}
      if keep == 0 then
        rcall('HDEL', px_key, pr.field)
      else
        rcall('HSET', px_key, pr.field,
              promise_value(keep, pr.count_until, pr.created, pr.needed_by))
      end
    end
  end
end

local line = cjson.encode({location = location, supply_id = supply_id, type = doc.t,
                           quantity = quantity, eta = doc.e, reference = doc.r,
                           promised = promised})
local broken_json = #broken > 0 and cjson.encode(broken) or '[]'
if action ~= 'unchanged' or #broken > 0 then
  local min_id = clock_min_id(now, ARGV[9])
  local p = pos_read(pos_key, location) or {on_hand = 0, held = 0, committed = 0, safety = 0}
  local v = pos_view(p, expired_by_location(hx_key, now)[location])
  local function head(ev_type)
    local n = event_head(ev_type, sku, location, now, v.on_hand, v.held, v.committed, v.safety,
                         v.available)
    return event_put(n, 'supply', line)
  end
  if action ~= 'unchanged' then event_xadd(stream_key, min_id, head('supply.' .. action)) end
  if #broken > 0 then
    event_xadd(stream_key, min_id, event_put(head('promise_broken'), 'holds', broken_json))
  end
end
return {'ok', action, line, broken_json}
