-- When on_hand falls below held + committed at a location, some holds there can no longer be
-- served from it. Emit a `shortfall` event naming them, newest first, until their units cover
-- the missing ones, so an OMS can re-route them. Lapsed (expired) lines are not counted.
-- `view`: the position (pos_view) as it is now.
--!include position.lua
--!include event.lua
local function emit_shortfall(stream_key, min_id, now, sku, location, view, hx_key, ho_key,
                              extra)
  local owed = view.held + view.committed
  if view.on_hand >= owed then return end
  local missing = owed - math.max(view.on_hand, 0)
  local named, covered = {}, 0
  local members = rcall('ZREVRANGE', ho_key, 0, -1)
  for i = 1, #members do
    if covered >= missing then break end
    local hold, loc, qty = line_parse(members[i])
    if loc == location then
      local score = rcall('ZSCORE', hx_key, members[i])
      if not score or tonumber(score) > now then  -- committed, or active and not lapsed
        named[#named + 1] = hold
        covered = covered + qty
      end
    end
  end
  local n = event_head('shortfall', sku, location, now, view.on_hand, view.held,
                       view.committed, view.safety, view.available)
  n = event_put(n, 'shortfall', missing)
  n = event_put(n, 'holds', #named > 0 and cjson.encode(named) or '[]')
  for k, v in pairs(extra or {}) do n = event_put(n, k, v) end
  event_xadd(stream_key, min_id, n)
end

local function check_shortfall(stream_key, min_id, now, sku, location, pos_key, hx_key, ho_key,
                               extra)
  local p = pos_read(pos_key, location)
  if not p then return end
  local view = pos_view(p, expired_by_location(hx_key, now)[location])
  emit_shortfall(stream_key, min_id, now, sku, location, view, hx_key, ho_key, extra)
end
