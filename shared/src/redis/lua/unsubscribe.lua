-- Records a one-click unsubscribe against its campaign, once per recipient: the set of
-- recipients who unsubscribed, the `unsubscribed` counter, and the event. The suppression
-- itself is written first, by the caller, on the global list.
-- KEYS: meta, counts, events, unsubscribed
-- ARGV: events_maxlen, index, address, detail_json
-- Returns 1 if newly recorded, 0 if already, -1 if the campaign no longer exists.
local meta, counts, events, unsub = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('EXISTS', meta) == 0 then return -1 end
if redis.call('SADD', unsub, ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', counts, 'unsubscribed', 1)
event(events, ARGV[1], 'unsubscribed', ARGV[2], ARGV[3], ARGV[4])
-- A finished campaign's keys expire after retention; this one goes with them.
local ttl = redis.call('PTTL', meta)
if ttl > 0 then redis.call('PEXPIRE', unsub, ttl) end
return 1
