-- Fulfil a committed hold (shipped or picked up): on_hand and committed go down by its units
-- and the hold is done.
--
-- KEYS and ARGV[1..7]: the transition layout (see hold_commit.lua and includes/transition.lua).
-- ARGV[8] "1": another part of the hold (another partition: its record is out of this script's
--         reach) still has promised units not received, as the service read it; "0": none. Promises
--         only ever shrink, so a stale "1" can only refuse a fulfil a retry would allow.
--
-- The last key and the last three ARGV: the Idempotency-Key claim (includes/idempotency.lua),
-- taken before anything else; its replies {"idem", ...} come back unchanged.
--
-- The order of the refusals is the rule: a hold that lapsed by this script's clock is expired
-- (marked so, its units and promises given back) whatever it had promised; an active or
-- committed hold with promised units not received (here, or ARGV[8]) cannot ship them; any
-- other status than committed is invalid.
--
-- Replies: {"ok", "fulfilled"} | {"replayed", status} | {"not_found"} | {"keys_mismatch"}
--          | {"expired"} | {"promise_not_received"} | {"invalid", status}

local rcall = redis.call
--!include keyed.lua

local h, keys = keyed_begin(nil)
if not h then return keys end
if (h.status == 'active' or h.status == 'committed') and (promise_any(h) or ARGV[8] == '1') then
  return {'promise_not_received'}
end
if h.status ~= 'committed' then return {'invalid', h.status} end

hold_apply(ctx, h, keys, 'hold.fulfilled', false,
           function(p, q) p.on_hand = p.on_hand - q; p.committed = p.committed - q end)
rcall('HSET', hold_key, 'status', 'fulfilled', 'updated_at', ctx.now)
rcall('EXPIRE', hold_key, terminal_ttl)
return transition_done('fulfilled')
