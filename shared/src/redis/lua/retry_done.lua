-- Removes jobs that were pushed back into domain streams; moves deferred ones back to queued.
-- Only members this call removes are counted, so two schedulers never count one job twice.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: members
local moved = 0
for i = 1, #ARGV do
  if redis.call('ZREM', retry, ARGV[i]) == 1 then
    if not cjson.decode(ARGV[i]).p then moved = moved + 1 end
  end
end
if moved > 0 then
  redis.call('HINCRBY', counts, 'deferred', -moved)
  redis.call('HINCRBY', counts, 'queued', moved)
end
return moved
