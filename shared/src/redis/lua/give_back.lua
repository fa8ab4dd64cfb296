-- Gives back the tokens a worker took for entries it then did not send (a cancelled or paused
-- campaign's, stale duplicates): they cost the destination nothing, so dead entries drain at
-- read speed instead of at the destination's rate. take.lua caps the bucket at the burst in
-- force on its next visit.
-- KEYS: bucket
-- ARGV: n, lane (bulk|priority)
-- Returns the tokens now in the bucket (0 if it is gone).
local bucket, n = KEYS[1], tonumber(ARGV[1])
local b = redis.call('HMGET', bucket, 'tokens', 'ptokens')
if not b[1] then return 0 end
local tokens = tonumber(b[1]) + n
local fields = {'tokens', tokens}
if ARGV[2] == 'priority' and b[2] then
  fields[3] = 'ptokens'
  fields[4] = tonumber(b[2]) + n
end
redis.call('HSET', bucket, unpack(fields))
return math.floor(tokens)
