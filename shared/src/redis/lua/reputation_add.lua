-- Adds outcomes to one scope's rolling counts (a campaign's or a From domain's, overall or at
-- one provider). Two buckets take turns: once the current one holds `window` attempts the
-- other is emptied and becomes current, so the totals cover the last window to two windows.
-- KEYS: stats
-- ARGV: window, ttl_ms, then attempts, delivered, hard, complaints, deferred to add
-- Returns the totals over both buckets, in that order.
local names = {'attempts', 'delivered', 'hard', 'complaints', 'deferred'}
local fields = {'cur'}
for _, n in ipairs(names) do
  fields[#fields + 1] = 'a_' .. n
  fields[#fields + 1] = 'b_' .. n
end
local v = redis.call('HMGET', KEYS[1], unpack(fields))
local cur = v[1] or 'a'
local count = {}
for i, n in ipairs(names) do
  count['a_' .. n] = tonumber(v[2 * i] or '0')
  count['b_' .. n] = tonumber(v[2 * i + 1] or '0')
end
if count[cur .. '_attempts'] >= tonumber(ARGV[1]) then
  cur = (cur == 'a') and 'b' or 'a'
  for _, n in ipairs(names) do
    count[cur .. '_' .. n] = 0
    redis.call('HSET', KEYS[1], cur .. '_' .. n, 0)
  end
  redis.call('HSET', KEYS[1], 'cur', cur)
end
local out = {}
for i, n in ipairs(names) do
  local add = tonumber(ARGV[2 + i])
  if add ~= 0 then
    count[cur .. '_' .. n] = redis.call('HINCRBY', KEYS[1], cur .. '_' .. n, add)
  end
  out[i] = count['a_' .. n] + count['b_' .. n]
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return out
