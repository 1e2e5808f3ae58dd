-- Roll back one part of a multi-partition hold whose decision is "not confirmed": its units
-- return and it is marked expired (the record stays readable, as any expired hold's).
-- On the HOME part this IS the decision, and it is taken by the home part's own clock: a
-- pending home part is rolled back only once its deadline passed (before it, its coordinator
-- may still confirm it: {"undecided"}); a confirmed one is never ({"invalid", status}). So
-- hold_confirm.lua and this script, both atomic on the home part's slot, exclude each other.
-- A home part that does not exist (its reservation never arrived, or was aborted) gets a
-- tombstone, so a reservation arriving late finds it ({"exists"}) instead of starting over.
-- On any other part this is called only once its home part decided "expired"; it also rolls
-- back an active part then (a home part that lapsed takes the hold with it).
--
-- KEYS and ARGV[1..7]: the transition layout (see hold_commit.lua and includes/transition.lua).
-- ARGV[8] tombstone JSON {channel, reference, created_at, expires_at, parts, owner?} for a
--         missing home part (anything else: none, a missing part answers not_found)
--
-- Replies: {"ok", "expired"} | {"undecided"} | {"not_found"} | {"keys_mismatch"}
--          | {"expired"} (it had lapsed; now marked expired) | {"invalid", status}

local rcall = redis.call
--!include transition.lua

local h, keys = transition_begin()
if not h then
  if keys[1] == 'not_found' and string.sub(ARGV[8] or '', 1, 1) == '{' then
    local t = cjson.decode(ARGV[8])
    rcall('HSET', hold_key, 'status', 'expired', 'channel', t.channel, 'reference', t.reference,
          'created_at', t.created_at, 'updated_at', ctx.now, 'expires_at', t.expires_at,
          'lines', '[]', 'parts', t.parts)
    if t.owner then rcall('HSET', hold_key, 'owner', t.owner) end
    rcall('EXPIRE', hold_key, terminal_ttl)
    return {'ok', 'expired'}
  end
  return keys
end
local home = hold_is_home(h, hold_key)
if h.status == 'pending' then
  if home and hold_deadline(h) > ctx.now then return {'undecided'} end
elseif h.status ~= 'active' or home then
  return {'invalid', h.status}
end
hold_expire_now(ctx, hold_key, expiry_key, h, keys, terminal_ttl)
return {'ok', 'expired'}
