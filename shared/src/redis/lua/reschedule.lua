-- Sets when a member of a due set is next due, but only if the score the caller read (its
-- lease) is still there: a newer mark meanwhile (new jobs for a ready domain, a worker's
-- nudge of a message) must not be overwritten by a later "come back in a minute".
-- Used for the ready sets and the messages' due index.
-- KEYS: due
-- ARGV: member, score_read, due_ms
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
