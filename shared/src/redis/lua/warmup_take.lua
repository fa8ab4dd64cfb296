-- Takes up to `want` sends from a sender's warm-up cap for one day, for the whole cluster.
-- KEYS: counter (one per sender and UTC date)
-- ARGV: cap, want, ttl_ms
-- Returns {granted, sent_today}.
local counter, cap, want = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local sent = tonumber(redis.call('GET', counter) or 0)
local granted = math.max(0, math.min(want, cap - sent))
if granted > 0 then
  sent = redis.call('INCRBY', counter, granted)
  redis.call('PEXPIRE', counter, ARGV[3])
end
return {granted, sent}
