-- Removes a member from a due set, but only if its score is still the one the caller read
-- (a lease, or a version): a newer mark wins. Used for drained domains in the ready sets,
-- finished messages in their due index, and fully copied sources in the feed's pending set.
-- KEYS: due
-- ARGV: member, score_read
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
