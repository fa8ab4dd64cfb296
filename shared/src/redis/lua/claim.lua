-- Decides, for a batch of jobs of one campaign just read from a domain stream, what the worker
-- does with each: 1 send, 0 skip (stale duplicate), 2 parked (campaign not running), 3 dropped
-- (campaign cancelled). Marks the jobs to send as in flight under their stream entry id.
-- KEYS: meta, state, retry, counts, events
-- ARGV: events_maxlen, then (index, attempt, entry_id, parked_member_json, address) per job
-- Returns {status, code...}
local meta, state, retry, counts, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local status = redis.call('HGET', meta, 'status') or 'missing'
local now = now_ms()
local out = {status}
for i = 2, #ARGV, 5 do
  local idx, attempt, entry = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local current = job_is_current(redis.call('HGET', state, idx), attempt, entry)
  local code = 0
  if status == 'running' then
    if current then
      redis.call('HSET', state, idx, 'q' .. attempt .. ':' .. entry)
      code = 1
    end
  elseif status == 'paused' or status == 'scheduled' or status == 'draft' then
    if current then
      redis.call('ZADD', retry, now, ARGV[i + 3])
      code = 2
    end
  elseif status == 'cancelled' then
    if current then
      redis.call('HSET', state, idx, 'x')
      redis.call('HINCRBY', counts, 'queued', -1)
      redis.call('HINCRBY', counts, 'cancelled', 1)
      event(events, ARGV[1], 'cancelled', idx, ARGV[i + 4], '{}')
      code = 3
    end
  end
  out[#out + 1] = code
end
return out
