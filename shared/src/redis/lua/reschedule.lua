-- Sets when a visited domain is next due, but only if the caller's lease is still its score:
-- a scheduler that marked the domain ready meanwhile (new jobs) must not be overwritten by a
-- later "come back in a minute".
-- KEYS: ready
-- ARGV: domain, lease_ms, due_ms
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
