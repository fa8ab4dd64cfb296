-- Fails jobs that kept killing or stalling their workers; they were copied to the dead-letter
-- stream first. An outcome counts only if the job is still current (see decide.lua).
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: events_maxlen, then (index, attempt, entry_id, address, deliveries, dead_letter_id) per job
-- Returns {marked (0/1) ...}
local now = now_ms()
local out = {}
for i = 2, #ARGV, 6 do
  local idx, attempt, entry = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local marked = 0
  if job_is_current(redis.call('HGET', state, idx), attempt, entry) then
    redis.call('HSET', state, idx, 'p' .. attempt)
    redis.call('HINCRBY', counts, 'queued', -1)
    redis.call('HINCRBY', counts, 'failed', 1)
    local data = cjson.encode({reason = 'poison', deliveries = tonumber(ARGV[i + 4]), dead_letter = ARGV[i + 5]})
    event(events, ARGV[1], 'failed', idx, ARGV[i + 3], data)
    marked = 1
  end
  out[#out + 1] = marked
end
maybe_complete(meta, counts, now)
return out
