-- Outgoing events. Every script that changes a position takes `before = track(...)` first and
-- calls `emit_change(...)` after, in the same atomic step: no change without its event.
-- Only `location` of the sku changes between track() and emit_change(), so each channel's
-- total after is its total before moved by that location's change of available: one set of
-- reads per change. A caller that changes more in between sets `before.recount = true`.
--!include position.lua
--!include event.lua
local function track(channels, pos_key, hx_key, location, now)
  local expired = expired_by_location(hx_key, now)
  local p = pos_read(pos_key, location)
  return {totals = channel_totals(channels, pos_key, expired, location),
          available = p and pos_view(p, expired[location]).available or 0}
end

-- Append one event for the position (sku, location) as it is now, with the availability of
-- every channel whose figure or status moved since `before` (event.lua); returns the view and
-- the entry id. Trims entries older than min_id. `cause_k` = `cause_v`: the cause, e.g.
-- hold = <id> (cause_k nil: none).
local function emit_change(stream_key, min_id, now, channels, ev_type, sku, location,
                           pos_key, hx_key, before, cause_k, cause_v)
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
  local moved = nil
  for id, a in pairs(after) do
    moved = event_channel(moved, id, before.totals[id] or 0, a, channels[id], sku)
  end
  local id = event_add(stream_key, min_id, ev_type, sku, location, now, view.on_hand, view.held,
                       view.committed, view.safety, view.available, moved, cause_k, cause_v)
  return view, id
end
