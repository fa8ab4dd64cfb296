-- Moves a campaign through its lifecycle.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: action (start | pause | guard-pause | resume | cancel | release), events_maxlen, and
--       with guard-pause the event data JSON ({"reason": ...}): the reputation guard's pause
--       keeps its reason in `paused_reason` and records a `campaign_paused` event; a resume
--       clears the reason
-- A cancel counts everything that waits as cancelled at once: the retry set (each job gets its
-- `cancelled` event here) and the staged recipients (left in their list, from index
-- `dropped_from`, for cancel_staged.lua to give their events a chunk at a time). Jobs in
-- domain streams are swept or met by workers (decide.lua).
-- Returns {'ok'|'noop'|'invalid'|'missing', status}
local action = ARGV[1]
local status = redis.call('HGET', meta, 'status')
if not status then return {'missing', ''} end
local now = now_ms()

local function started_status()
  local send_at = tonumber(redis.call('HGET', meta, 'send_at') or '')
  if send_at and send_at > now then return 'scheduled' end
  return 'running'
end

local function set(new)
  redis.call('HSET', meta, 'status', new, 'updated_at', now)
  maybe_complete(meta, counts, now)
  return {'ok', redis.call('HGET', meta, 'status')}
end

if action == 'start' then
  if status == 'draft' then return set(started_status()) end
  if status == 'scheduled' or status == 'running' then return {'noop', status} end
elseif action == 'release' then
  if status == 'scheduled' and started_status() == 'running' then return set('running') end
  return {'noop', status}
elseif action == 'pause' or action == 'guard-pause' then
  if status == 'scheduled' or status == 'running' then
    if action == 'guard-pause' then
      redis.call('HSET', meta, 'paused_reason', cjson.decode(ARGV[3]).reason)
      event(events, ARGV[2], 'campaign_paused', '', '', ARGV[3])
    end
    return set('paused')
  end
  if status == 'paused' then return {'noop', status} end
elseif action == 'resume' then
  if status == 'paused' then
    redis.call('HDEL', meta, 'paused_reason')
    return set(started_status())
  end
  if status == 'scheduled' or status == 'running' then return {'noop', status} end
elseif action == 'cancel' then
  if status == 'cancelled' then return {'noop', status} end
  if status ~= 'completed' then
    local dropped = count(counts, 'staged')
    redis.call('HSET', meta, 'dropped_from', redis.call('HGET', meta, 'cursor') or '0')
    redis.call('HSET', counts, 'staged', 0)
    for _, member in ipairs(redis.call('ZRANGE', retry, 0, -1)) do
      local job = cjson.decode(member)
      if job.p then
        redis.call('HINCRBY', counts, 'queued', -1)
      else
        redis.call('HINCRBY', counts, 'deferred', -1)
      end
      event(events, ARGV[2], 'cancelled', job.i, job.r, '{}')
      dropped = dropped + 1
    end
    redis.call('DEL', retry)
    redis.call('HINCRBY', counts, 'cancelled', dropped)
    redis.call('HSET', meta, 'status', 'cancelled', 'updated_at', now)
    return {'ok', 'cancelled'}
  end
end
return {'invalid', status}
