-- Records delivery outcomes for jobs this worker holds in flight. An outcome counts only if
-- the job is still current for the recipient: its in-flight mark, or the state the mark was
-- made on, when a failover lost the mark (decide.lua's write) but not the send. The first
-- count leaves a state no job is current for, so a replay never counts twice.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: events_maxlen, max_age_ms, then per outcome:
--   index, attempt, entry_id, kind (sent|deferred|bounced|failed), retry_delay_ms,
--   retry_member_json, queued_at_ms, address, detail_json
-- Returns {recorded (0/1) ...}; a deferral whose next attempt would come after the job's max
-- age fails now instead (2), so no retry ever waits past max age.
local maxlen, max_age = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local out = {}
-- Counter changes are summed and applied once per batch.
local delta = {queued = 0}
for i = 3, #ARGV, 9 do
  local idx, attempt, entry, kind = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local recorded = 0
  if job_is_current(redis.call('HGET', state, idx), tonumber(attempt), entry) then
    recorded = 1
    local detail = ARGV[i + 8]
    if kind == 'deferred' and now + tonumber(ARGV[i + 4]) - tonumber(ARGV[i + 6]) >= max_age then
      kind = 'failed'
      detail = cjson.encode({reason = 'max_age', last = cjson.decode(detail)})
      recorded = 2
    end
    delta.queued = delta.queued - 1
    delta[kind] = (delta[kind] or 0) + 1
    if kind == 'deferred' then
      redis.call('HSET', state, idx, 'd' .. attempt)
      redis.call('ZADD', retry, now + tonumber(ARGV[i + 4]), ARGV[i + 5])
    else
      redis.call('HSET', state, idx, string.sub(kind, 1, 1))
    end
    event(events, maxlen, kind, idx, ARGV[i + 7], detail)
  end
  out[#out + 1] = recorded
end
for field, n in pairs(delta) do
  if n ~= 0 then redis.call('HINCRBY', counts, field, n) end
end
maybe_complete(meta, counts, now)
return out
