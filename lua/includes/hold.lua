-- Hold-record helpers shared by the transition scripts.
-- A hold record is a hash: status, channel, reference, created_at, expires_at (ms),
-- count_until (ms: when its lines stop counting; = expires_at, or the pending deadline),
-- lines (JSON [{sku, location, quantity}]), parts (partitions of a multi-partition hold).
local function hold_load(hold_key)
  local flat = rcall('HGETALL', hold_key)
  if #flat == 0 then return nil end
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  h.lines_t = cjson.decode(h.lines)
  return h
end

-- Map sku -> {pos key, hx key} from the key pairs after the fixed keys, named by ARGV JSON.
local function sku_keys(first_pair_index, skus_json)
  local names = cjson.decode(skus_json)
  local map = {}
  for i = 1, #names do
    local k = first_pair_index + (i - 1) * 2
    map[names[i]] = {KEYS[k], KEYS[k + 1]}
  end
  return map
end

local function hx_member(hold_id, location, qty)
  return hold_id .. '|' .. location .. '|' .. qty
end

-- Apply `change(p, qty)` to every line's position, drop the lines from the expiry index by
-- sku when `unindex`, and emit one event per line. Returns false if a key is missing.
local function hold_apply(h, hold_id, keys, now, stream_key, min_id, ev_type, unindex, change)
  for _, line in ipairs(h.lines_t) do
    local k = keys[line.sku]
    local p = pos_read(k[1], line.location) or {on_hand = 0, held = 0, committed = 0, safety = 0}
    change(p, line.quantity)
    pos_write(k[1], line.location, p)
    if unindex then rcall('ZREM', k[2], hx_member(hold_id, line.location, line.quantity)) end
    local expired = expired_by_location(k[2], now)
    emit(stream_key, min_id, ev_type, line.sku, line.location,
         pos_view(p, expired[line.location]), {hold = hold_id})
  end
end

local function keys_cover(h, keys)
  for _, line in ipairs(h.lines_t) do
    if not keys[line.sku] then return false end
  end
  return true
end

-- An active or pending hold whose lines stopped counting is expired: return its units.
local function hold_expire_now(hold_key, expiry_key, h, hold_id, keys, now, stream_key, min_id,
                               terminal_ttl)
  hold_apply(h, hold_id, keys, now, stream_key, min_id, 'hold.expired', true,
             function(p, q) p.held = p.held - q end)
  rcall('HSET', hold_key, 'status', 'expired', 'updated_at', now)
  rcall('ZREM', expiry_key, hold_id)
  rcall('EXPIRE', hold_key, terminal_ttl)
end

local function is_lapsed(h, now)
  return (h.status == 'active' or h.status == 'pending') and tonumber(h.count_until) <= now
end
