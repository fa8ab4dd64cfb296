-- Appends recipients to a draft campaign.
-- KEYS: meta, counts, staged
-- ARGV: recipient JSON lines
-- Returns {'ok', n} or {'not_draft', status} or {'missing', ''}
local meta, counts, staged = KEYS[1], KEYS[2], KEYS[3]
local status = redis.call('HGET', meta, 'status')
if not status then return {'missing', ''} end
if status ~= 'draft' then return {'not_draft', status} end
push_args(staged, 1)
redis.call('HINCRBY', counts, 'total', #ARGV)
redis.call('HINCRBY', counts, 'staged', #ARGV)
return {'ok', #ARGV}
