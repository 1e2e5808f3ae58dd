-- Position helpers. A position is one field of the sku's hash: field = location,
-- value = "on_hand:held:committed:safety_stock". `held` counts every hold line not yet
-- released, committed, or reaped — including lines whose hold has expired but that the
-- reaper has not reached yet. Readers subtract those with expired_by_location(), so an expired
-- hold never counts against availability, whether or not the reaper has run.
local function pos_parse(v)
  local o, h, c, s = string.match(v, '^(%-?%d+):(%-?%d+):(%-?%d+):(%-?%d+)$')
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

-- Units of hold lines on this sku whose hold expired at or before `now`, by location.
local function expired_by_location(hx_key, now)
  local by_loc = {}
  local members = rcall('ZRANGEBYSCORE', hx_key, '-inf', now)
  for i = 1, #members do
    local _, loc, qty = string.match(members[i], '^(.*)|(.*)|(%d+)$')
    by_loc[loc] = (by_loc[loc] or 0) + tonumber(qty)
  end
  return by_loc
end

-- What clients see: held without expired lines, and available = max(0, ...).
local function pos_view(p, expired)
  local held = p.held - (expired or 0)
  local available = p.on_hand - held - p.committed - p.safety
  if available < 0 then available = 0 end
  return {on_hand = p.on_hand, held = held, committed = p.committed, safety = p.safety,
          available = available}
end
