-- Whether a domain stream holds entries the group has not been given yet, or pending ones.
-- KEYS: stream
-- ARGV: group
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local last_generated
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then last_generated = info[i + 1] end
end
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, delivered, pending
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
    if g[i] == 'pending' then pending = g[i + 1] end
  end
  if name == ARGV[1] then
    if delivered ~= last_generated or tonumber(pending) > 0 then return 1 end
    return 0
  end
end
return 1
