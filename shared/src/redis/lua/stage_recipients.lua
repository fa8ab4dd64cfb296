-- Appends recipients to a draft campaign.
-- KEYS: meta, counts, staged
-- ARGV: recipient JSON lines
-- Returns {'ok', n} or {'not_draft', status} or {'missing', ''}
local meta, counts, staged = KEYS[1], KEYS[2], KEYS[3]
local status = redis.call('HGET', meta, 'status')
if not status then return {'missing', ''} end
if status ~= 'draft' then return {'not_draft', status} end
local i = 1
while i <= #ARGV do
  local last = math.min(i + 999, #ARGV)
  redis.call('RPUSH', staged, unpack(ARGV, i, last))
  i = last + 1
end
redis.call('HINCRBY', counts, 'total', #ARGV)
redis.call('HINCRBY', counts, 'staged', #ARGV)
return {'ok', #ARGV}
