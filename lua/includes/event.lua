-- THE outgoing event record of a position's change (docs/architecture.md, "Events"): its
-- fields and their order, and the entry of each channel whose availability or status moved.
-- Every writer of a change event goes through event_add() (emit.lua, state.lua,
-- stock_import.lua, hold_reserve.lua; shortfall.lua starts its own from event_head()).
--!include channels.lua


-- `moved` (nil, or the entries so far) with channel `id`'s entry added when its figure of
-- `sku` moved: `before` and `after` are the channel's totals (its locations summed), `ch` the
-- channel (its threshold and rule: the figures are channel_figure()'s; a status can move only
-- with its figure).
local function event_channel(moved, id, before, after, ch, sku)
  if after == before then return moved end
  if ch[3] then
    before, after = channel_figure(ch, sku, before), channel_figure(ch, sku, after)
    if after == before then return moved end
  end
  -- One entry of an event's `channels`; channel ids are identifiers ([A-Za-z0-9._:-]), so
  -- nothing needs escaping. Concatenated: string.format would sprintf each of its 5 fields.
  local threshold = ch[1]
  local entry = '{"channel":"' .. id .. '","available_before":' .. string.format('%d', before) ..
                ',"available_after":' .. string.format('%d', after) .. ',"status_before":"' ..
                stock_status(before, threshold) .. '","status_after":"' ..
                stock_status(after, threshold) .. '"}'
  if moved then return moved .. ',' .. entry end
  return '[' .. entry
end

-- The fields are laid out in one reused table (no table made per event).
local EVENT_FIELDS = {'type', '', 'sku', '', 'location', '', 'at', '', 'on_hand', '', 'held', '',
                      'committed', '', 'safety_stock', '', 'available', ''}

-- The fields every position event starts with; returns their count, for event_put().
local function event_head(ev_type, sku, location, at, on_hand, held, committed, safety,
                          available)
  local f = EVENT_FIELDS
  f[2], f[4], f[6], f[8], f[10] = ev_type, sku, location, at, on_hand
  f[12], f[14], f[16], f[18] = held, committed, safety, available
  return 18
end

local function event_put(n, k, v)
  EVENT_FIELDS[n + 1], EVENT_FIELDS[n + 2] = k, v
  return n + 2
end

-- XADD the first `n` fields; min_id trims the stream (nil: no trimming). Returns the entry id.
local function event_xadd(stream_key, min_id, n)
  if min_id then
    return rcall('XADD', stream_key, 'MINID', '~', min_id, '*', unpack(EVENT_FIELDS, 1, n))
  end
  return rcall('XADD', stream_key, '*', unpack(EVENT_FIELDS, 1, n))
end

-- The event of (sku, location) as it is after a change: the position's figures (held without
-- lapsed units), `moved` from event_channel() (nil: no channel moved), then one cause field
-- (`cause_k` nil: none), e.g. hold = <id> or source_event = <id>. Returns the entry id.
local function event_add(stream_key, min_id, ev_type, sku, location, at, on_hand, held,
                         committed, safety, available, moved, cause_k, cause_v)
  local n = event_head(ev_type, sku, location, at, on_hand, held, committed, safety, available)
  if moved then n = event_put(n, 'channels', moved .. ']') end
  if cause_k then n = event_put(n, cause_k, cause_v) end
  return event_xadd(stream_key, min_id, n)
end
