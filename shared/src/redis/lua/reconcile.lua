-- Puts back jobs of a running campaign that the reconcile duty found nowhere (no domain stream,
-- retry set or pending list holds them: a failover or a lost AOF second took them). Each is
-- acted on only if the recipient's state is still the one the duty saw, so a job that moved
-- meanwhile is left alone. The job waits in the retry set, due now, and the retry promotion
-- pushes it like any other:
--   no state (pushed, never taken): attempt 0, parked (still counted queued);
--   'q<a>:<entry>' (in flight, entry gone): the state goes back to what it was before the
--     claim, attempt <a>, parked (still counted queued);
--   'd<n>' (deferred, retry lost): attempt n + 1, not parked (counted deferred until promoted).
-- Each gets a `requeued` event. Nothing is done if the campaign was paused or resumed since the
-- duty looked (its `updated_at` moved): a pause moves jobs from the streams to the retry set.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: events_maxlen, updated_at seen, then per job: index, state seen ('' for none), member_json, address
-- Returns the indexes put back.
if redis.call('HGET', meta, 'status') ~= 'running' then return {} end
if (redis.call('HGET', meta, 'updated_at') or '') ~= ARGV[2] then return {} end
local now = now_ms()
local out = {}
for i = 3, #ARGV, 4 do
  local idx, seen, member = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local current = redis.call('HGET', state, idx)
  if (current or '') == seen then
    local attempt = tonumber(cjson.decode(member).a or 0)
    if string.sub(seen, 1, 1) == 'q' then
      if attempt == 0 then
        redis.call('HDEL', state, idx)
      else
        redis.call('HSET', state, idx, 'd' .. (attempt - 1))
      end
    end
    redis.call('ZADD', retry, now, member)
    event(events, ARGV[1], 'requeued', idx, ARGV[i + 3], cjson.encode({reason = 'reconciled', attempt = attempt}))
    out[#out + 1] = idx
  end
end
return out
