-- Marks domains as worth a visit now (after jobs were added to their streams).
-- KEYS: due
-- ARGV: domains
local now = now_ms()
for i = 1, #ARGV do
  redis.call('ZADD', KEYS[1], now, ARGV[i])
end
return now
