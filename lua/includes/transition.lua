-- Common start and end of the hold transition scripts, which share one key and ARGV layout:
-- KEYS[1] hold record, KEYS[2] expiry index, KEYS[3] event stream, KEYS[4] operation marker,
-- KEYS[5..] (position hash, hold lines by expiry) per sku named in ARGV[5].
-- ARGV[1] now ms, ARGV[2] hold id, ARGV[3] oldest event id to keep, ARGV[4] seconds to keep
-- a finished hold, ARGV[5] skus JSON, ARGV[6] seconds to keep the operation marker (0: none).
local hold_key, expiry_key, stream_key, marker_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[1])
local hold_id = ARGV[2]
local min_id = ARGV[3]
local terminal_ttl = ARGV[4]
local marker_ttl = tonumber(ARGV[6])

-- Returns (hold, keys) or (nil, reply).
local function transition_begin()
  if marker_ttl > 0 and rcall('EXISTS', marker_key) == 1 then
    return nil, {'replayed', rcall('HGET', hold_key, 'status') or ''}
  end
  local h = hold_load(hold_key)
  if not h then return nil, {'not_found'} end
  local keys = sku_keys(5, ARGV[5])
  if not keys_cover(h, keys) then return nil, {'keys_mismatch'} end
  if is_lapsed(h, now) then
    hold_expire_now(hold_key, expiry_key, h, hold_id, keys, now, stream_key, min_id, terminal_ttl)
    return nil, {'expired'}
  end
  return h, keys
end

local function transition_done(status)
  if marker_ttl > 0 then rcall('SET', marker_key, status, 'EX', marker_ttl) end
  return {'ok', status}
end
