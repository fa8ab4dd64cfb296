-- Decides, for a batch of jobs of one campaign just read from a domain stream, what the worker
-- does with each: 1 send, 0 skip (stale duplicate), 2 parked (campaign not running), 3 dropped
-- (campaign cancelled), 4 failed (older than max age: wherever a job sat, in a stream, a
-- retry, a pause or a dead worker's pending list, it is checked here before any send).
-- Marks the jobs to send as in flight under their stream entry id.
-- A sweep (mode 'sweep': entries still in the stream, taken by no worker, see
-- scan_campaign.lua) never sends: while the campaign runs every job is left alone (5).
-- Parked jobs wait in the retry set in their stream order, so a resume sends them in it.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: events_maxlen, max_age_ms, mode (take | sweep), then (index, attempt, entry_id,
--       parked_member_json, address, queued_at_ms) per job
-- Returns {status, code...}
local status = redis.call('HGET', meta, 'status') or 'missing'
local max_age = tonumber(ARGV[2])
local now = now_ms()
local out = {status}
local first = 4
if ARGV[3] == 'sweep' and status == 'running' then
  for _ = first, #ARGV, 6 do out[#out + 1] = 5 end
  return out
end

-- An entry id `ms-seq` as a retry score that keeps stream order (a score holds 1/4096 of a
-- ms exactly while ms < 2^41, i.e. until 2039; later ties fall back to the member's order).
local function stream_order(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if not ms then return now end
  return tonumber(ms) + math.min(tonumber(seq), 4095) / 4096
end

for i = first, #ARGV, 6 do
  local idx, attempt, entry = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local current = job_is_current(redis.call('HGET', state, idx), attempt, entry)
  local expired = now - tonumber(ARGV[i + 5]) >= max_age
  local code = 0
  if current and expired and status ~= 'cancelled' and status ~= 'missing' then
    redis.call('HSET', state, idx, 'f')
    redis.call('HINCRBY', counts, 'queued', -1)
    redis.call('HINCRBY', counts, 'failed', 1)
    event(events, ARGV[1], 'failed', idx, ARGV[i + 4], cjson.encode({reason = 'max_age', attempts = attempt}))
    code = 4
  elseif status == 'running' then
    if current then
      redis.call('HSET', state, idx, 'q' .. attempt .. ':' .. entry)
      code = 1
    end
  elseif status == 'paused' or status == 'scheduled' or status == 'draft' then
    if current then
      redis.call('ZADD', retry, stream_order(entry), ARGV[i + 3])
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
maybe_complete(meta, counts, now)
return out
