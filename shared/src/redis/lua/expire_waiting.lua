-- Fails jobs that waited in a campaign's retry set (parked by a pause, or deferred) past
-- their max age, so nothing sits for days just because its campaign is paused.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: max_age_ms, events_maxlen, limit
-- Returns the number of jobs failed.
local max_age = tonumber(ARGV[1])
local now = now_ms()
local failed = 0
for _, member in ipairs(redis.call('ZRANGE', retry, 0, tonumber(ARGV[3]) - 1)) do
  local job = cjson.decode(member)
  if now - (job.t or 0) >= max_age then
    redis.call('ZREM', retry, member)
    local s = redis.call('HGET', state, tostring(job.i))
    local waiting = (s == false and job.a == 0) or s == ('d' .. (job.a - 1))
    if waiting then
      redis.call('HSET', state, tostring(job.i), 'f')
      if job.p then
        redis.call('HINCRBY', counts, 'queued', -1)
      else
        redis.call('HINCRBY', counts, 'deferred', -1)
      end
      redis.call('HINCRBY', counts, 'failed', 1)
      event(events, ARGV[2], 'failed', job.i, job.r, cjson.encode({reason = 'max_age', attempts = job.a}))
      failed = failed + 1
    end
  end
end
maybe_complete(meta, counts, now)
return failed
