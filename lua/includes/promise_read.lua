-- The read side of the promising rules (lua/includes/promise.lua, which includes this file):
-- what is promised from a sku's supply lines, and what those lines add to its availability.
-- Scripts that only read supply (availability.lua, supply_read.lua) include this alone, so
-- they do not define the transition hooks on every call.
--
-- Supply hash os:{P}:sup:<sku>: field "<location>|<supply id>", value JSON
--   {"t": type, "q": open units, "e": eta ms, "r": reference, "c": created ms, "u": updated ms}
-- Promise hash os:{P}:px:<sku>: field "<hold id>|<location>|<supply id>", value
--   "<units>|<count_until ms, -1 once committed>|<order>|<needed_by ms, 0: none>"
-- order: when the promise was made, 16 digits, ms × 1000 + n, strictly above every promise
-- of the sku that still counts (promise.lua promise_order), so promises made in one ms keep
-- the order they were made in; a promise written before the order was 16 digits holds its
-- created ms (13 digits), which sorts before every newer one, as it should.
-- A promise counts while its hold is committed or count_until > now, so a lapsed hold's
-- promises stop counting at once, as its on-hand lines do (the reaper only tidies up).
-- Identifiers never contain '|', so the fields split unambiguously.
local PROMISE_PATTERN = '^(%d+)|(%-?%d+)|(%d+)|(%d+)$'

-- units, count_until, created, needed_by of a promise value (numbers).
local function promise_parse(v)
  local u, cu, cr, nb = string.match(v, PROMISE_PATTERN)
  return tonumber(u), tonumber(cu), tonumber(cr), tonumber(nb)
end

local function promise_counts(count_until, now)
  return count_until == -1 or count_until > now
end

-- The promises of a sku that still count, in no order: list of {field, hold, line ("loc|sid"),
-- units, count_until, created (the order), needed_by}, units by line, and the newest order
-- (0: none).
local function promises_counting(px_key, now)
  local flat = rcall('HGETALL', px_key)
  local list, by_line, newest = {}, {}, 0
  for i = 1, #flat, 2 do
    local u, cu, cr, nb = promise_parse(flat[i + 1])
    if u and promise_counts(cu, now) then
      local hold, line = string.match(flat[i], '^([^|]*)|(.*)$')
      list[#list + 1] = {field = flat[i], hold = hold, line = line, units = u,
                         count_until = cu, created = cr, needed_by = nb}
      by_line[line] = (by_line[line] or 0) + u
      if cr > newest then newest = cr end
    end
  end
  return list, by_line, newest
end

-- The open promises of a sku that still count (promises_counting), oldest first (ties by
-- field), and units by line.
local function promises_open(px_key, now)
  local list, by_line = promises_counting(px_key, now)
  table.sort(list, function(a, b)
    if a.created ~= b.created then return a.created < b.created end
    return a.field < b.field
  end)
  return list, by_line
end

-- A sku's supply lines with what is promised from each: list of {line ("loc|sid"), location,
-- supply_id, type, quantity, eta, reference, created, updated, promised, free}, earliest eta
-- first (then location, then supply id: the order promises consume them), and the newest
-- order of the sku's promises that count (0: none). Most skus have no supply line: then one
-- HGETALL of a missing key is the whole cost (no promise read).
local function supply_lines(sup_key, px_key, now)
  local flat = rcall('HGETALL', sup_key)
  if #flat == 0 then return flat, 0 end
  local _, by_line, newest = promises_counting(px_key, now)
  local out = {}
  for i = 1, #flat, 2 do
    local d = cjson.decode(flat[i + 1])
    local loc, sid = string.match(flat[i], '^([^|]*)|(.*)$')
    local promised = by_line[flat[i]] or 0
    out[#out + 1] = {line = flat[i], location = loc, supply_id = sid, type = d.t,
                     quantity = d.q, eta = d.e, reference = d.r, created = d.c, updated = d.u,
                     promised = promised, free = math.max(d.q - promised, 0)}
  end
  if #out > 1 then
    table.sort(out, function(a, b)
      if a.eta ~= b.eta then return a.eta < b.eta end
      return a.line < b.line
    end)
  end
  return out, newest
end

-- THE incoming rule (docs/architecture.md "Availability"): what `lines` (supply_lines(), earliest
-- eta first) add to a sku's availability at the locations of `scope` (a set; nil: every
-- location): the units not yet promised, and the earliest eta of a line with such units (0:
-- none). Future units are not buffered by a channel's rule.
local function supply_incoming(lines, scope)
  local incoming, first = 0, 0
  for i = 1, #lines do
    local l = lines[i]
    if l.free > 0 and (scope == nil or scope[l.location]) then
      incoming = incoming + l.free
      if first == 0 then first = l.eta end
    end
  end
  return incoming, first
end

