-- Shared by audit_snapshot.lua and audit_repair.lua: their key layout, and what the caller's
-- keys miss. The caller lists the partition's hold ids and skus (found with SCAN); anything
-- created since is named by an index (every open hold line is in its sku's `hx` index, every
-- counting hold in the expiry index) or by the skus set, so the script can tell that its view
-- is incomplete and answer `stale` instead of judging (or repairing) without it.
--
-- KEYS[1] os:{P}:expiry, KEYS[2] os:{P}:skus, KEYS[3] os:{P}:events,
-- KEYS[3 + i] os:{P}:hold:<id> for the i-th id of ARGV[1],
-- then per sku of ARGV[2] a pair os:{P}:pos:<sku>, os:{P}:hx:<sku>.
local function audit_layout(hold_ids_json, skus_json)
  local L = {expiry = KEYS[1], skus_set = KEYS[2], stream = KEYS[3],
             hold_ids = cjson.decode(hold_ids_json), skus = cjson.decode(skus_json),
             hold_key = {}, sku = {}}
  for i, id in ipairs(L.hold_ids) do L.hold_key[id] = KEYS[3 + i] end
  local base = 3 + #L.hold_ids
  for i, sku in ipairs(L.skus) do
    local k = base + 2 * (i - 1)
    L.sku[sku] = {KEYS[k + 1], KEYS[k + 2]}
  end
  return L
end

--!include position.lua

-- Reads the hold records and indexes. Returns {holds = {id = fields (+ lines_t when the lines
-- decode)}, expiry = flat ZRANGE WITHSCORES, idx = {sku = {hx = flat}},
-- missing_holds = {...}, missing_skus = {...}}.
local function audit_load(L)
  local S = {holds = {}, idx = {}, missing_holds = {}, missing_skus = {}}
  local asked = {}
  local function need_hold(id)
    if id and not L.hold_key[id] and not asked['h' .. id] then
      asked['h' .. id] = true
      S.missing_holds[#S.missing_holds + 1] = id
    end
  end
  local function need_sku(sku)
    if type(sku) == 'string' and not L.sku[sku] and not asked['s' .. sku] then
      asked['s' .. sku] = true
      S.missing_skus[#S.missing_skus + 1] = sku
    end
  end
  for _, id in ipairs(L.hold_ids) do
    local flat = rcall('HGETALL', L.hold_key[id])
    if #flat > 0 then
      local h = {}
      for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
      local ok, lines = pcall(cjson.decode, h.lines or '')
      if ok and type(lines) == 'table' then
        h.lines_t = lines
        for _, line in ipairs(lines) do
          if type(line) == 'table' then need_sku(line.sku) end
        end
      end
      S.holds[id] = h
    end
  end
  S.expiry = rcall('ZRANGE', L.expiry, 0, -1, 'WITHSCORES')
  for i = 1, #S.expiry, 2 do need_hold(S.expiry[i]) end
  for _, sku in ipairs(rcall('SMEMBERS', L.skus_set)) do need_sku(sku) end
  for _, sku in ipairs(L.skus) do
    local k = L.sku[sku]
    local entry = {hx = rcall('ZRANGE', k[2], 0, -1, 'WITHSCORES')}
    for _, flat in pairs(entry) do
      for i = 1, #flat, 2 do need_hold((line_parse(flat[i]))) end
    end
    S.idx[sku] = entry
  end
  return S
end

-- A hold record the audit can reason about: a known status, count_until for a counting one,
-- lines [{sku, location, quantity > 0}], and an order per line when it has `orders` (hold.lua
-- hold_orders). Others are reported and left alone.
local AUDIT_STATUSES = {active = true, pending = true, committed = true, fulfilled = true,
                        released = true, expired = true}
local function audit_readable(h)
  if not h.lines_t or not AUDIT_STATUSES[h.status or ''] then return false end
  if (h.status == 'active' or h.status == 'pending') and not tonumber(h.count_until) then
    return false
  end
  for _, line in ipairs(h.lines_t) do
    if type(line) ~= 'table' or type(line.sku) ~= 'string' or type(line.location) ~= 'string'
       or type(line.quantity) ~= 'number' or line.quantity <= 0 then
      return false
    end
  end
  if h.orders then
    local n = 0
    for _ in string.gmatch(h.orders, '%d+') do n = n + 1 end
    if n ~= #h.lines_t then return false end
  end
  return true
end

local function audit_stale(S)
  if #S.missing_holds == 0 and #S.missing_skus == 0 then return nil end
  return {'stale', cjson.encode({holds = S.missing_holds, skus = S.missing_skus})}
end
