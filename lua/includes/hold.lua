-- Hold-record helpers shared by the hold scripts.
-- A hold record is a hash: status, channel, reference, created_at, updated_at, expires_at
-- (ms), count_until (ms: when its lines stop counting; = expires_at, or the pending deadline
-- of a multi-partition part + its grace), deadline (ms, pending parts only: the home part can
-- be confirmed only before it; any part still pending after it gets settled), lines (JSON [{sku, location, quantity}]), parts (partitions of
-- the whole hold, home first), owner (the API key name that created it, "" anonymous; absent
-- on holds made before owners were recorded; checked by the service, never changed).
-- orders (the order of each line of `lines`, comma-separated, in the same order: the lines'
-- members of the hx index, position.lua line_member; absent on records written before the
-- one index: hold_orders).
-- Per sku, two keys come in KEYS as a pair: position hash, open hold lines (hx).
--!include emit.lua
--!include promise.lua
local function hold_load(hold_key)
  local flat = rcall('HGETALL', hold_key)
  if #flat == 0 then return nil end
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  h.lines_t = cjson.decode(h.lines)
  return h
end

-- Map sku -> {pos, hx} from the key pairs starting at KEYS[first], named by skus_json.
local function sku_keys(first, skus_json)
  local names = cjson.decode(skus_json)
  local map = {}
  for i = 1, #names do
    local k = first + (i - 1) * 2
    map[names[i]] = {KEYS[k], KEYS[k + 1]}
  end
  return map
end

-- The order of each line of a loaded record (h.lines_t), as its members carry it: the record's
-- `orders`; a record written before them (an upgraded store, docs/operations.md) gives every
-- line its created_at's (what `omnistock audit --fix` indexes such a record by).
local function hold_orders(h)
  local out = {}
  if h.orders then
    for o in string.gmatch(h.orders, '%d+') do out[#out + 1] = o end
  else
    local o = line_order_at(tonumber(h.created_at) or 0)
    for i = 1, #h.lines_t do out[i] = o end
  end
  return out
end

-- The member of the i-th line of a loaded record; `orders`: hold_orders(h).
local function hold_line_member(h, orders, hold_id, i)
  local line = h.lines_t[i]
  return line_member(orders[i], hold_id, line.location, line.quantity)
end

local function keys_cover(h, keys)
  for _, line in ipairs(h.lines_t) do
    if not keys[line.sku] then return false end
  end
  return true
end

-- Apply `change(p, qty)` to every line's position, drop the line from the line index (hx), or
-- with `commit` score it committed (LINE_COMMITTED: it never lapses, and stays named by
-- shortfalls), and emit one event per line.
-- ctx = {now, hold_id, stream_key, min_id, channels}
local function hold_apply(ctx, h, keys, ev_type, commit, change)
  local orders = hold_orders(h)
  for i, line in ipairs(h.lines_t) do
    local k = keys[line.sku]
    local before = track(ctx.channels, k[1], k[2], line.location, ctx.now)
    local p = pos_read(k[1], line.location) or {on_hand = 0, held = 0, committed = 0, safety = 0}
    change(p, line.quantity)
    pos_write(k[1], line.location, p)
    local member = hold_line_member(h, orders, ctx.hold_id, i)
    if commit then
      rcall('ZADD', k[2], 'XX', LINE_COMMITTED, member)
    else
      rcall('ZREM', k[2], member)
    end
    emit_change(ctx.stream_key, ctx.min_id, ctx.now, ctx.channels, ev_type, line.sku,
                line.location, k[1], k[2], before, 'hold', ctx.hold_id)
  end
  promise_follow(ctx.hold_id, h, ev_type)  -- units promised from supply (promise.lua)
end

-- An active or pending hold whose lines stopped counting: mark it expired, return its units.
local function hold_expire_now(ctx, hold_key, expiry_key, h, keys, terminal_ttl)
  hold_apply(ctx, h, keys, 'hold.expired', false, function(p, q) p.held = p.held - q end)
  rcall('HSET', hold_key, 'status', 'expired', 'updated_at', ctx.now)
  rcall('ZREM', expiry_key, ctx.hold_id)
  rcall('EXPIRE', hold_key, terminal_ttl)
end

local function is_lapsed(h, now)
  return (h.status == 'active' or h.status == 'pending') and tonumber(h.count_until) <= now
end

-- The deadline of a pending part (records made before `deadline` was written: count_until).
local function hold_deadline(h)
  return tonumber(h.deadline or h.count_until)
end

-- Is this record its hold's home part (the partition named first in `parts`, which the hold id
-- names too)? Only the home part's status decides a multi-partition hold.
local function hold_is_home(h, key)
  return tonumber(string.match(key, '{(%d+)}')) == tonumber(string.match(h.parts or '', '^(%d+)'))
end
