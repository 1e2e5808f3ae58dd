-- Claim an incoming stock event's identity (location, id) for its content, before the change
-- is applied in its sku's partition (stock_events.lua). The claim lives in the identity's own
-- slot, so the same (location, id) sent again with another sku, which lives in another
-- partition, is recognised. A claim is never changed, only kept for its retention.
--
-- KEYS[1] claim                          os:{ev:<location>|<event id>}
--
-- ARGV[1] fingerprint of the event       "type|sku|quantity"
-- ARGV[2] seconds to keep the claim
--
-- Reply: the fingerprint the identity is claimed for: ARGV[1] if this call claimed it or the
--        same content had; another one if the id was first used for a different event.

local rcall = redis.call

local claimed = rcall('GET', KEYS[1])
if claimed then
  return claimed
end
rcall('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
