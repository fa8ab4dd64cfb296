-- Leases up to `k` domains that are due for a visit, oldest first, so workers spread over
-- destinations instead of crowding one. A lease simply pushes the domain's due time ahead;
-- a worker that dies loses nothing, the domain comes due again.
-- KEYS: ready
-- ARGV: k, lease_ms
-- Returns {now_ms, lease_until_ms, next_due_ms or -1, domain...}
local ready = KEYS[1]
local now = now_ms()
local lease = now + tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', ready, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local next_due = -1
if #due == 0 then
  local first = redis.call('ZRANGE', ready, 0, 0, 'WITHSCORES')
  if first[2] then next_due = tonumber(first[2]) end
end
local out = {now, lease, next_due}
for _, d in ipairs(due) do
  redis.call('ZADD', ready, lease, d)
  out[#out + 1] = d
end
return out
