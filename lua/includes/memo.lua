-- Arguments that repeat call after call (a partition's channels configuration, the candidate
-- locations, a TTL), parsed once and reused while their text stays the same. Run as a
-- function library (app/store/functions.py), these tables live as long as the library: a
-- pure memo of an immutable parse — one entry per slot, so it stays bounded, and no reader
-- ever writes into a parsed value — so nothing of one call reaches the next but the parse of
-- the same text. A FUNCTION LOAD REPLACE starts them empty; as a plain script (EVALSHA)
-- they are new each call and every call decodes. tests/lua/test_memo_guard.py enforces "no
-- reader writes" (a check function appended to the library in the test only: nothing here
-- costs a call anything).
local MEMO_TEXT, MEMO_VALUE = {}, {}

-- parse(text) (cjson.decode, tonumber), from the memo when slot `slot` last parsed this same
-- text.
local function memo(slot, parse, text)
  if MEMO_TEXT[slot] == text then return MEMO_VALUE[slot] end
  local value = parse(text)
  MEMO_TEXT[slot], MEMO_VALUE[slot] = text, value
  return value
end

-- The locations hold_reserve.lua reads, each once: pinned, candidates, then every location a
-- channel sees; `at[loc]` is its index in `wanted`, and so in each sku's HMGET reply. Returns
-- wanted, at, #wanted. A pure function of its three decoded (memo) arguments, so it is
-- memoized on their identity too: the same lines, candidates and channels as the last call
-- give the same (read-only) tables.
local LOCATIONS_OF = {}

local function hold_locations(lines, candidates, channels)
  local m = LOCATIONS_OF
  if m[1] == lines and m[2] == candidates and m[3] == channels then return m[4], m[5], m[6] end
  local wanted, at, nw = {}, {}, 0
  for i = 1, #lines do
    local loc = lines[i].l
    if loc and not at[loc] then nw = nw + 1 wanted[nw] = loc at[loc] = nw end
  end
  for i = 1, #candidates do
    local loc = candidates[i]
    if not at[loc] then nw = nw + 1 wanted[nw] = loc at[loc] = nw end
  end
  for _, ch in pairs(channels) do
    local locs = ch[2]
    for i = 1, #locs do
      local loc = locs[i]
      if not at[loc] then nw = nw + 1 wanted[nw] = loc at[loc] = nw end
    end
  end
  m[1], m[2], m[3], m[4], m[5], m[6] = lines, candidates, channels, wanted, at, nw
  return wanted, at, nw
end
