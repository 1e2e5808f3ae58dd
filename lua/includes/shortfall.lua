-- When on_hand falls below held + committed at a location, some holds there can no longer be
-- served from it. Emit a `shortfall` event naming them, newest first, until their units cover
-- the missing ones, so an OMS can re-route them. Lapsed (expired) lines are not counted.
-- `view`: the position (pos_view) as it is now.
--!include position.lua
--!include event.lua
local function emit_shortfall(stream_key, min_id, now, sku, location, view, hx_key, extra)
  local owed = view.held + view.committed
  if view.on_hand >= owed then return end
  local missing = owed - math.max(view.on_hand, 0)
  -- The lines still counting (score after now: active and not lapsed, or committed), newest
  -- first: members sort by their order (position.lua line_member), ties by the rest.
  local members = rcall('ZRANGEBYSCORE', hx_key, '(' .. now, '+inf')
  table.sort(members, function(a, b) return a > b end)
  local named, covered = {}, 0
  for i = 1, #members do
    if covered >= missing then break end
    local hold, loc, qty = line_parse(members[i])
    if loc == location then
      named[#named + 1] = hold
      covered = covered + qty
    end
  end
  local n = event_head('shortfall', sku, location, now, view.on_hand, view.held,
                       view.committed, view.safety, view.available)
  n = event_put(n, 'shortfall', missing)
  n = event_put(n, 'holds', #named > 0 and cjson.encode(named) or '[]')
  for k, v in pairs(extra or {}) do n = event_put(n, k, v) end
  event_xadd(stream_key, min_id, n)
end

local function check_shortfall(stream_key, min_id, now, sku, location, pos_key, hx_key, extra)
  local p = pos_read(pos_key, location)
  if not p then return end
  local view = pos_view(p, expired_by_location(hx_key, now)[location])
  emit_shortfall(stream_key, min_id, now, sku, location, view, hx_key, extra)
end
