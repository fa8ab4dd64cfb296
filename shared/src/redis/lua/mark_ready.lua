-- Marks domains as worth a visit now (after jobs were added to their streams).
-- KEYS: ready
-- ARGV: domains
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #ARGV do
  redis.call('ZADD', KEYS[1], now, ARGV[i])
end
return now
