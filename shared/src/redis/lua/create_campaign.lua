-- Creates a campaign with its first recipients, or recognises a replay of the same request.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: spec_json, digest, start ('1' or '0'), send_at_ms ('' if none), expansion options JSON
--       ('' if none; what expand_peek hands back), then recipient JSON lines
-- Returns {'created'|'exists'|'conflict', status}
local existing = redis.call('HGET', meta, 'digest')
if existing then
  local status = redis.call('HGET', meta, 'status')
  if existing == ARGV[2] then return {'exists', status} end
  return {'conflict', status}
end
local now = now_ms()
local status = 'draft'
if ARGV[3] == '1' then
  status = 'running'
  if ARGV[4] ~= '' and tonumber(ARGV[4]) > now then status = 'scheduled' end
end
redis.call('HSET', meta, 'spec', ARGV[1], 'digest', ARGV[2], 'status', status, 'created_at', now, 'cursor', 0)
if ARGV[4] ~= '' then redis.call('HSET', meta, 'send_at', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', meta, 'expand', ARGV[5]) end
local n = #ARGV - 5
push_args(staged, 6)
redis.call('HSET', counts, 'total', n, 'staged', n)
maybe_complete(meta, counts, now)
return {'created', redis.call('HGET', meta, 'status')}
