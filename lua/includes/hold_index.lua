-- The holds listing index (GET /v1/holds): one sorted set per partition, os:{P}:hl, every
-- score 0, so it is ordered by member: "<owner> <created_at ms, 13 digits> <hold id>". A space
-- sorts before every identifier character, so one owner's holds are one lex range, oldest
-- first, and the whole set is every hold ordered by (owner, created_at, id). hold_reserve.lua
-- and hold_backorder.lua add a part's member in the same step as the part (hold_index_add);
-- hold_list.lua drops the members whose record has gone (finished-hold retention).
local function hold_index_member(owner, created_at, hold_id)
  return owner .. ' ' .. string.format('%013d', created_at) .. ' ' .. hold_id
end

-- A new hold (or hold part) joins the listing index, and its metadata (a JSON object, '' for
-- none: nothing more written) goes on its record: both in the step that creates it, so a
-- hold is listed exactly when it exists (hold_reserve.lua, hold_backorder.lua).
local function hold_index_add(index_key, hold_key, owner, created_at, hold_id, metadata)
  redis.call('ZADD', index_key, 0, hold_index_member(owner, created_at, hold_id))
  if metadata ~= '' then redis.call('HSET', hold_key, 'metadata', metadata) end
end
