-- Adds outcomes to one scope's rolling counts (a campaign's or a From domain's, overall or at
-- one provider). Two buckets take turns: once the current one holds `window` attempts the
-- other is emptied and becomes current, so the totals cover the last window to two windows.
-- KEYS: stats
-- ARGV: window, ttl_ms, then attempts, delivered, hard, complaints, deferred to add
-- Returns the totals over both buckets, in that order.
local names = {'attempts', 'delivered', 'hard', 'complaints', 'deferred'}
local cur = redis.call('HGET', KEYS[1], 'cur') or 'a'
if tonumber(redis.call('HGET', KEYS[1], cur .. '_attempts') or '0') >= tonumber(ARGV[1]) then
  cur = (cur == 'a') and 'b' or 'a'
  for _, n in ipairs(names) do redis.call('HSET', KEYS[1], cur .. '_' .. n, 0) end
  redis.call('HSET', KEYS[1], 'cur', cur)
end
for i, n in ipairs(names) do
  local add = tonumber(ARGV[2 + i])
  if add ~= 0 then redis.call('HINCRBY', KEYS[1], cur .. '_' .. n, add) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local out = {}
for i, n in ipairs(names) do
  out[i] = tonumber(redis.call('HGET', KEYS[1], 'a_' .. n) or '0') + tonumber(redis.call('HGET', KEYS[1], 'b_' .. n) or '0')
end
return out
