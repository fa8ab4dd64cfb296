-- Removes consumers of a stream's group that hold no pending entries and have been idle for
-- at least `idle_ms` (workers or schedulers that are gone). Atomic, so a consumer is never
-- deleted while it holds an entry.
-- KEYS: stream
-- ARGV: group, idle_ms
-- Returns the number of consumers removed.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then return 0 end
local removed = 0
for _, c in ipairs(consumers) do
  local name, pending, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1] end
    if c[i] == 'pending' then pending = tonumber(c[i + 1]) end
    if c[i] == 'idle' then idle = tonumber(c[i + 1]) end
  end
  if pending == 0 and idle >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    removed = removed + 1
  end
end
return removed
