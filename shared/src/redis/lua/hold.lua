-- Puts jobs this worker holds in flight back to wait, unsent and without using an attempt
-- (a warm-up cap reached for today): the recipient's state goes back to what it was before the
-- claim, the job waits in the retry set until `until_ms`, and counts move queued -> deferred.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: events_maxlen, until_ms, detail_json, then per job: index, attempt, entry_id, member_json, address
-- Returns the number of jobs held.
local held = 0
for i = 4, #ARGV, 5 do
  local idx, attempt, entry = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  if redis.call('HGET', state, idx) == ('q' .. attempt .. ':' .. entry) then
    if attempt == 0 then
      redis.call('HDEL', state, idx)
    else
      redis.call('HSET', state, idx, 'd' .. (attempt - 1))
    end
    redis.call('ZADD', retry, ARGV[2], ARGV[i + 3])
    event(events, ARGV[1], 'deferred', idx, ARGV[i + 4], ARGV[3])
    held = held + 1
  end
end
if held > 0 then
  redis.call('HINCRBY', counts, 'queued', -held)
  redis.call('HINCRBY', counts, 'deferred', held)
end
return held
