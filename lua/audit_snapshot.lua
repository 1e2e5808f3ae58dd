#!lua flags=no-writes
-- Read one partition for `omnistock audit` in one atomic step: its hold records, positions,
-- hold indexes, skus set and the newest event of each position, so the audit judges a
-- consistent state even under live traffic. Read-only: never changes anything.
--
-- KEYS[1]  expiry index   os:{P}:expiry
-- KEYS[2]  skus set       os:{P}:skus
-- KEYS[3]  event stream   os:{P}:events
-- KEYS[3 + i]  for the i-th hold id of ARGV[1]: os:{P}:hold:<id>
-- KEYS[3 + H + 2j - 1 .. 3 + H + 2j]  for the j-th sku of ARGV[2] (H = number of hold ids):
--          os:{P}:pos:<sku>, os:{P}:hx:<sku>
--
-- ARGV[1] hold ids JSON ["id", ...]: every hold record of the partition the caller found
-- ARGV[2] skus JSON ["sku", ...]: every sku with a position or hold index in the partition
-- ARGV[3] at most this many stream entries are read (newest first) looking for the newest
--         event of each position; 0 reads none
-- ARGV[4] clock offset, ms (0; see includes/clock.lua)
--
-- Replies:
--   {"ok", JSON {"holds": {id: {field: value}} (plus "lapsed": "1" for an active or pending
--                hold whose lines stopped counting by the store's clock, "overdue": "1" for a
--                pending part past its deadline), "expiry": [id, score, ...],
--                "skus_set": [sku, ...], "positions": {sku: [location, value, ...]},
--                "hx": {sku: [member, score, ...]} (score "inf": a committed line),
--                "events": {"sku|location": [entry id, field, value, ...]},
--                "events_scanned": n}}
--     (an empty list may come as {}: Lua tables do not tell lists from maps)
--   {"stale", JSON {"holds": [id, ...], "skus": [sku, ...]}}  an index or the skus set names
--     holds or skus the caller did not pass (created since it looked): call again with them

local rcall = redis.call
--!include clock.lua
--!include audit.lua

local L = audit_layout(ARGV[1], ARGV[2])
local max_events = tonumber(ARGV[3])
local now = clock_now(ARGV[4])
local S = audit_load(L)
local stale = audit_stale(S)
if stale then return stale end

local out = {holds = {}, expiry = S.expiry, skus_set = rcall('SMEMBERS', L.skus_set),
             positions = {}, hx = {}, events = {}, events_scanned = 0}
for id, h in pairs(S.holds) do
  h.lines_t = nil
  local until_ms = tonumber(h.count_until)
  if (h.status == 'active' or h.status == 'pending') and until_ms and until_ms <= now then
    h.lapsed = '1'  -- by the store's clock; the reaper will mark it (not drift)
  end
  local deadline = tonumber(h.deadline or h.count_until)
  if h.status == 'pending' and deadline and deadline <= now then
    h.overdue = '1'  -- past its deadline: to be settled (app/domain/hold_parts.py)
  end
  out.holds[id] = h
end

local wanted, remaining = {}, 0
for _, sku in ipairs(L.skus) do
  local flat = rcall('HGETALL', L.sku[sku][1])
  out.positions[sku] = flat
  for i = 1, #flat, 2 do
    wanted[sku .. '|' .. flat[i]] = true
    remaining = remaining + 1
  end
  out.hx[sku] = S.idx[sku].hx
end

-- Newest event of each position: walk the stream backwards until each has been seen.
local page, last = 500, '+'
while remaining > 0 and out.events_scanned < max_events do
  local count = math.min(page, max_events - out.events_scanned)
  local batch = rcall('XREVRANGE', L.stream, last, '-', 'COUNT', count)
  for _, entry in ipairs(batch) do
    local f = entry[2]
    local sku, loc
    for i = 1, #f, 2 do
      if f[i] == 'sku' then sku = f[i + 1] elseif f[i] == 'location' then loc = f[i + 1] end
    end
    local key = (sku or '') .. '|' .. (loc or '')
    if wanted[key] and not out.events[key] then
      local row = {entry[1]}
      for i = 1, #f do row[#row + 1] = f[i] end
      out.events[key] = row
      remaining = remaining - 1
    end
  end
  out.events_scanned = out.events_scanned + #batch
  if #batch < count then break end
  last = '(' .. batch[#batch][1]
end

return {'ok', cjson.encode(out)}
