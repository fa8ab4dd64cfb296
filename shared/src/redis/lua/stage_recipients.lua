-- Appends recipients to a draft campaign.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: recipient JSON lines
-- Returns {'ok', n} or {'not_draft', status} or {'missing', ''}
local status = redis.call('HGET', meta, 'status')
if not status then return {'missing', ''} end
if status ~= 'draft' then return {'not_draft', status} end
push_args(staged, 1)
redis.call('HINCRBY', counts, 'total', #ARGV)
redis.call('HINCRBY', counts, 'staged', #ARGV)
-- Touched: an idle draft expires (campaigns.idle_expiry) counting from its last upload.
redis.call('HSET', meta, 'updated_at', now_ms())
return {'ok', #ARGV}
