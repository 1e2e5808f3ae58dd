-- The holds listing index (GET /v1/holds): one sorted set per partition, os:{P}:hl, every
-- score 0, so it is ordered by member: "<owner> <created_at ms, 13 digits> <hold id>". A space
-- sorts before every identifier character, so one owner's holds are one lex range, oldest
-- first, and the whole set is every hold ordered by (owner, created_at, id). hold_reserve.lua
-- adds its part's member in the same step as the part (one ZADD); hold_list.lua drops the
-- members whose record has gone (finished-hold retention).
local function hold_index_member(owner, created_at, hold_id)
  return string.format('%s %013d %s', owner, created_at, hold_id)
end
