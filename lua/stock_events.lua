-- Apply incoming stock events (POS sales, returns, receipts, counts, transfers from ERP/WMS) of
-- one partition, in order. Each event identity (location, id) is applied once: its seen record,
-- holding the event's fingerprint (type|sku|quantity), is written here with the change and the
-- outgoing event. The same identity again is a duplicate when the fingerprint matches, and
-- `id_reused` (nothing changes) when it does not. (The caller has already claimed the identity
-- across partitions, app/domain/stock_events.py; this check needs no claim to be right.) A sale is never refused for lack of stock
-- (physical truth wins): on_hand may go negative, and a `shortfall` event names the holds
-- that can no longer be served at the location.
--
-- KEYS[1] event stream                   os:{P}:events
-- KEYS[2] skus of partition              os:{P}:skus
-- KEYS[2i + 1], KEYS[2i + 2]            for the i-th sku of ARGV[5]:
--         position hash                  os:{P}:pos:<sku>
--         open hold lines                os:{P}:hx:<sku> (position.lua line_member)
-- KEYS[2n + 2j + 1], KEYS[2n + 2j + 2]    for the j-th event:
--         seen record                    os:{P}:seen:<location>|<event id>
--         record of an earlier release   os:{P}:seen:<event id> (read only: duplicate if set)
--
-- ARGV[1] clock offset, ms (0; see includes/clock.lua)
-- ARGV[2] event retention, ms (MINID trimming)
-- ARGV[3] seconds to keep dedupe records
-- ARGV[4] channels JSON {id: [low_stock_threshold, [locations]]} that see the locations
-- ARGV[5] skus JSON ["sku", ...] naming the key pairs in order
-- ARGV[6] events JSON [{"i": id, "t": type, "s": sku index, "l": location, "q": quantity,
--                       "f": fingerprint}]
--         type: sale, return, receipt, adjustment (signed q), count (absolute q), damage,
--         transfer_out, transfer_in; validated by the caller
--
-- Reply: one entry per event, in order: {status, on_hand, held, committed, safety_stock,
--        available} with status "applied", "duplicate" or "id_reused" (the position as it
--        is now)

local rcall = redis.call
--!include clock.lua
--!include shortfall.lua
--!include state.lua

local stream_key, skus_key = KEYS[1], KEYS[2]
local now = clock_now(ARGV[1])
local min_id = clock_min_id(now, ARGV[2])
local seen_ttl = ARGV[3]
local channels = cjson.decode(ARGV[4])
local skus = cjson.decode(ARGV[5])
local events = cjson.decode(ARGV[6])
local first_seen_key = 2 * #skus + 3  -- then two keys per event

local DELTA_SIGN = {sale = -1, damage = -1, transfer_out = -1, ['return'] = 1, receipt = 1,
                    transfer_in = 1, adjustment = 1}

-- Each sku's positions (the events' and the channels' locations) and lapsed lines are read
-- once, on first use, and kept current (state.lua).
local event_locs = {}
for j, ev in ipairs(events) do event_locs[j] = ev.l end
local wanted = state_locations(event_locs, channels)
local seers = state_seers(channels)
local states = {}
local ZERO = {on_hand = 0, held = 0, committed = 0, safety = 0}

local out = {}
for j, ev in ipairs(events) do
  local seen_key = KEYS[first_seen_key + 2 * (j - 1)]
  local seen_before_locations_key = KEYS[first_seen_key + 2 * j - 1]
  local status = 'applied'
  local s = states[ev.s]
  if not s then
    s = state_load(KEYS[2 * ev.s + 1], KEYS[2 * ev.s + 2], now, wanted)
    states[ev.s] = s
  end
  if rcall('EXISTS', seen_before_locations_key) == 1 then
    status = 'duplicate'
  elseif rcall('SET', seen_key, ev.f, 'NX', 'EX', seen_ttl) then
    local before = state_before(s, channels, seers, ev.l)
    local cur = state_pos(s, ev.l) or ZERO
    local p = {on_hand = cur.on_hand, held = cur.held, committed = cur.committed,
               safety = cur.safety}
    if ev.t == 'count' then
      p.on_hand = ev.q
    else
      p.on_hand = p.on_hand + DELTA_SIGN[ev.t] * ev.q
    end
    state_write(s, ev.l, p)
    rcall('SADD', skus_key, skus[ev.s])
    state_emit(stream_key, min_id, now, channels, seers, 'stock.' .. ev.t, skus[ev.s], ev.l, s,
               before, 'source_event', ev.i)
    if p.on_hand < cur.on_hand then
      emit_shortfall(stream_key, min_id, now, skus[ev.s], ev.l, pos_view(p, s.expired[ev.l]),
                     KEYS[2 * ev.s + 2], {source_event = ev.i})
    end
  elseif rcall('GET', seen_key) == ev.f then
    status = 'duplicate'
  else
    status = 'id_reused'
  end
  local v = pos_view(state_pos(s, ev.l) or ZERO, s.expired[ev.l])
  out[j] = {status, v.on_hand, v.held, v.committed, v.safety, v.available}
end
return out
