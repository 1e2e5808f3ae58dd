-- Outgoing events. Every script that changes a position takes `before = track(...)` first and
-- calls `emit_change(...)` after, in the same atomic step: no change without its event.
-- Only `location` of the sku changes between track() and emit_change(), so each channel's
-- total after is its total before moved by that location's change of available: one set of
-- reads per change. A caller that changes more in between sets `before.recount = true`.
local function track(channels, pos_key, hx_key, location, now)
  local expired = expired_by_location(hx_key, now)
  local p = pos_read(pos_key, location)
  return {totals = channel_totals(channels, pos_key, expired, location),
          available = p and pos_view(p, expired[location]).available or 0}
end

-- Append one event for the position (sku, location) as it is now, with the availability of
-- every channel whose figure or status moved since `before`; returns the view and the entry id. Trims entries older than min_id.
-- `extra` holds the cause: {hold = id} or {source_event = id}, and any other fields.
local function emit_change(stream_key, min_id, now, channels, ev_type, sku, location,
                           pos_key, hx_key, before, extra)
  local expired = expired_by_location(hx_key, now)
  local p = pos_read(pos_key, location) or {on_hand = 0, held = 0, committed = 0, safety = 0}
  local view = pos_view(p, expired[location])
  local after
  if before.recount then
    after = channel_totals(channels, pos_key, expired, location)
  else
    after = {}
    for id, total in pairs(before.totals) do
      after[id] = total + view.available - before.available
    end
  end
  local changed = {}
  for id, a in pairs(after) do
    local b = before.totals[id] or 0
    local threshold = channels[id][1]
    local sb, sa = stock_status(b, threshold), stock_status(a, threshold)
    if a ~= b or sa ~= sb then
      changed[#changed + 1] = {channel = id, available_before = b, available_after = a,
                               status_before = sb, status_after = sa}
    end
  end
  local fields = {'type', ev_type, 'sku', sku, 'location', location, 'at', now,
                  'on_hand', view.on_hand, 'held', view.held, 'committed', view.committed,
                  'safety_stock', view.safety, 'available', view.available}
  if #changed > 0 then
    fields[#fields + 1] = 'channels'
    fields[#fields + 1] = cjson.encode(changed)
  end
  for k, v in pairs(extra or {}) do
    fields[#fields + 1] = k
    fields[#fields + 1] = v
  end
  local id = rcall('XADD', stream_key, 'MINID', '~', min_id, '*', unpack(fields))
  return view, id
end
