-- Removes a drained domain from the ready set, but only if its score is still the lease the
-- caller holds: a newer mark from a scheduler wins.
-- KEYS: ready
-- ARGV: domain, lease_ms
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
