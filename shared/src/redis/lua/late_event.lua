-- Records something that happens to a recipient after the send (an unsubscribe, a bounce
-- report, a complaint) against its campaign, once per recipient and kind: the set of what
-- was recorded, the kind's counter, and the event. Suppressions are written by the caller.
-- KEYS: meta, counts, events, late
-- ARGV: events_maxlen, member (kind letter ':' index), counter, event_type, index, address, detail_json
-- Returns 1 if newly recorded, 0 if already, -1 if the campaign no longer exists.
local meta, counts, events, late = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('EXISTS', meta) == 0 then return -1 end
if redis.call('SADD', late, ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', counts, ARGV[3], 1)
event(events, ARGV[1], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
-- A finished campaign's keys expire after retention; this one goes with them.
local ttl = redis.call('PTTL', meta)
if ttl > 0 then redis.call('PEXPIRE', late, ttl) end
return 1
