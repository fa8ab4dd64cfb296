-- Gives a dead-lettered job another chance: if the recipient is still marked poisoned at that
-- attempt, its state goes back to what it was before, it moves from failed to deferred, and it
-- waits in the retry set, due now (the schedulers put it back into its domain stream). A
-- completed campaign runs again until it is done.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: index, attempt, retry_member_json
-- Returns {'ok'|'not_poisoned'|'cancelled'|'missing', status}
local status = redis.call('HGET', meta, 'status')
if not status then return {'missing', ''} end
if status == 'cancelled' then return {'cancelled', status} end
local idx, attempt = ARGV[1], tonumber(ARGV[2])
if redis.call('HGET', state, idx) ~= ('p' .. attempt) then return {'not_poisoned', status} end
if attempt == 0 then
  redis.call('HDEL', state, idx)
else
  redis.call('HSET', state, idx, 'd' .. (attempt - 1))
end
redis.call('HINCRBY', counts, 'failed', -1)
redis.call('HINCRBY', counts, 'deferred', 1)
redis.call('ZADD', retry, now_ms(), ARGV[3])
if status == 'completed' then
  -- Finished campaigns expire after their retention; a reopened one must not.
  for _, key in ipairs(KEYS) do redis.call('PERSIST', key) end
  redis.call('HSET', meta, 'status', 'running')
  redis.call('HDEL', meta, 'completed_at')
  status = 'running'
end
return {'ok', status}
