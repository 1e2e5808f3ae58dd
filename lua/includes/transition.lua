-- Common start and end of the hold transition scripts, which share one key and ARGV layout:
-- KEYS[1] hold record      os:{P}:hold:<id>
-- KEYS[2] expiry index     os:{P}:expiry
-- KEYS[3] event stream     os:{P}:events
-- KEYS[4] operation marker os:{P}:op:<digest>
-- KEYS[5..] per sku named in ARGV[5], a pair: os:{P}:pos:<sku>, os:{P}:hx:<sku>
-- KEYS[last], ARGV[last 3]: the Idempotency-Key claim (idempotency.lua) that commit, fulfil,
-- release and extend take first; the other transition scripts ignore them.
-- ARGV[1] clock offset ms (0; see clock.lua), ARGV[2] hold id, ARGV[3] event retention ms
-- (MINID trimming), ARGV[4] seconds to
-- keep a finished hold, ARGV[5] skus JSON, ARGV[6] seconds to keep the operation marker
-- (0: no marker), ARGV[7] channels JSON {id: [low_stock_threshold, [locations]]}.
--!include clock.lua
--!include hold.lua

local hold_key, expiry_key, marker_key = KEYS[1], KEYS[2], KEYS[4]
local terminal_ttl = ARGV[4]
local marker_ttl = tonumber(ARGV[6])
local transition_now = clock_now(ARGV[1])
local ctx = {now = transition_now, hold_id = ARGV[2], stream_key = KEYS[3],
             min_id = clock_min_id(transition_now, ARGV[3]), channels = cjson.decode(ARGV[7])}

-- Returns (hold, keys) or (nil, reply); with `status`, a hold in any other status answers
-- {"invalid", its status}.
local function transition_begin(status)
  if marker_ttl > 0 and rcall('EXISTS', marker_key) == 1 then
    return nil, {'replayed', rcall('HGET', hold_key, 'status') or ''}
  end
  local h = hold_load(hold_key)
  if not h then return nil, {'not_found'} end
  local keys = sku_keys(5, ARGV[5])
  if not keys_cover(h, keys) then return nil, {'keys_mismatch'} end
  if is_lapsed(h, ctx.now) then
    hold_expire_now(ctx, hold_key, expiry_key, h, keys, terminal_ttl)
    return nil, {'expired'}
  end
  if status and h.status ~= status then return nil, {'invalid', h.status} end
  return h, keys
end

local function transition_done(status)
  if marker_ttl > 0 then rcall('SET', marker_key, status, 'EX', marker_ttl) end
  return {'ok', status}
end
