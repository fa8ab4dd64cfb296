-- Records something that happens to a recipient after the send (an open, a click, an
-- unsubscribe, a bounce report, a complaint) against its campaign: the unique counter once
-- per recipient and kind (the set of what was recorded), the total counter and the event
-- every time. Kinds without a total counter are recorded once only. Suppressions are written
-- by the caller.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: events_maxlen, member (kind letter ':' index), unique_counter, event_type, index,
--       address, detail_json, total_counter ('' for once-only kinds)
-- Returns 1 if new for this recipient, 0 if a repeat, -1 if the campaign no longer exists.
if redis.call('EXISTS', meta) == 0 then return -1 end
local new = redis.call('SADD', late, ARGV[2])
if new == 1 then redis.call('HINCRBY', counts, ARGV[3], 1) end
if ARGV[8] ~= '' then
  redis.call('HINCRBY', counts, ARGV[8], 1)
elseif new == 0 then
  return 0
end
event(events, ARGV[1], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
-- A finished campaign's keys expire after retention; this one goes with them.
local ttl = redis.call('PTTL', meta)
if ttl > 0 then redis.call('PEXPIRE', late, ttl) end
return new
