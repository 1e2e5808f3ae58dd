-- A sku's positions and lapsed hold lines, read once per script call (one HMGET, one
-- ZRANGEBYSCORE) and kept current by the script's own writes, with each channel's total
-- computed once and then moved by every change: a change costs its HSET and XADD instead of
-- re-reading everything around it (each redis.call, and each table or string made, costs more
-- than the read it does; benchmarks/lua_micro.py).
--
-- Every change of a position must go through state_write(), or the state goes stale.
--!include position.lua
--!include event.lua

local STATE_NONE = {}
local STATE_ZERO = {on_hand = 0, held = 0, committed = 0, safety = 0}

-- location -> ids of the channels that see it, from the ARGV-decoded channels.
local function state_seers(channels)
  local by_loc = {}
  for id, ch in pairs(channels) do
    local locs = ch[2]
    for i = 1, #locs do
      local list = by_loc[locs[i]]
      if not list then list = {} by_loc[locs[i]] = list end
      list[#list + 1] = id
    end
  end
  return by_loc
end

-- The locations a script will read: `first` (a list, may be nil), then every location a
-- channel sees, each once. Others are still read on demand, one HGET each.
local function state_locations(first, channels)
  local out, seen = {}, {}
  for _, loc in ipairs(first or STATE_NONE) do
    if not seen[loc] then seen[loc] = true out[#out + 1] = loc end
  end
  for _, ch in pairs(channels) do
    local locs = ch[2]
    for i = 1, #locs do
      if not seen[locs[i]] then seen[locs[i]] = true out[#out + 1] = locs[i] end
    end
  end
  return out
end

-- s.pos[loc]: parsed position, or false where there is none; s.expired[loc]: lapsed units.
local function state_load(pos_key, hx_key, now, locs)
  local s = {pos_key = pos_key, pos = {}, expired = expired_by_location(hx_key, now),
             totals = {}}
  if #locs > 0 then
    local values = rcall('HMGET', pos_key, unpack(locs))
    for i = 1, #locs do
      local v = values[i]
      s.pos[locs[i]] = v and pos_parse(v) or false
    end
  end
  return s
end

local function state_pos(s, loc)
  local p = s.pos[loc]
  if p == nil then
    p = pos_read(s.pos_key, loc) or false
    s.pos[loc] = p
  end
  return p
end

-- pos_view(p).available, 0 without a position.
local function state_available(s, loc)
  local p = state_pos(s, loc)
  if not p then return 0 end
  return pos_available(p.on_hand, p.held, s.expired[loc] or 0, p.committed, p.safety)
end

local function state_total(s, channels, id)
  local t = s.totals[id]
  if t == nil then
    t = 0
    local locs = channels[id][2]
    for i = 1, #locs do t = t + state_available(s, locs[i]) end
    s.totals[id] = t
  end
  return t
end

-- Before changing `loc` (as track() in emit.lua): makes sure the totals of the channels that
-- see it are taken, and returns its available, which state_emit() compares against.
local function state_before(s, channels, seers, loc)
  local ids = seers[loc] or STATE_NONE
  for k = 1, #ids do state_total(s, channels, ids[k]) end
  return state_available(s, loc)
end

local function state_write(s, loc, p)
  s.pos[loc] = p
  pos_write(s.pos_key, loc, p)
end

-- Append the event of `loc`'s change since state_before() answered `before` (event.lua's
-- event_add(), with one cause field `cause_k` = `cause_v`), and move the totals of the
-- channels that see `loc` by its change. Returns the entry id.
local function state_emit(stream_key, min_id, now, channels, seers, ev_type, sku, loc, s,
                          before, cause_k, cause_v)
  local p = state_pos(s, loc) or STATE_ZERO
  local lapsed = s.expired[loc] or 0
  local available = pos_available(p.on_hand, p.held, lapsed, p.committed, p.safety)
  local delta = available - before
  local moved = nil
  local ids, totals = seers[loc] or STATE_NONE, s.totals
  for k = 1, #ids do
    local id = ids[k]
    local b = totals[id]
    totals[id] = b + delta
    moved = event_channel(moved, id, b, b + delta, channels[id], sku)
  end
  return event_add(stream_key, min_id, ev_type, sku, loc, now, p.on_hand, p.held - lapsed,
                   p.committed, p.safety, available, moved, cause_k, cause_v)
end
