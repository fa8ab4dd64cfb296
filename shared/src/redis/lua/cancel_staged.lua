-- Gives the staged recipients a cancel dropped (counted cancelled by transition.lua, in the
-- staged list from index `dropped_from`) their `cancelled` event, `chunk` at a time, so a
-- large list never blocks Redis for long; the list goes once all have theirs. Recipients a
-- racing expansion pushed meanwhile are among them (expand_commit.lua marks them cancelled
-- without an event).
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: events_maxlen, chunk
-- Returns how many staged recipients still wait for their event.
if redis.call('HGET', meta, 'status') ~= 'cancelled' then return 0 end
local from = tonumber(redis.call('HGET', meta, 'dropped_from') or '0')
local chunk = tonumber(ARGV[2])
local recipients = redis.call('LRANGE', staged, from, from + chunk - 1)
for k, r in ipairs(recipients) do
  event(events, ARGV[1], 'cancelled', from + k - 1, cjson.decode(r).r, '{}')
end
if #recipients > 0 then redis.call('HSET', meta, 'dropped_from', from + #recipients) end
local left = redis.call('LLEN', staged) - from - #recipients
if left <= 0 then
  redis.call('UNLINK', staged)
  return 0
end
return left
