-- Lists jobs of a running campaign whose retry (or un-park) time has come.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: limit
-- Returns {now_ms, member...}; none unless the campaign is running.
local now = now_ms()
if redis.call('HGET', meta, 'status') ~= 'running' then return {now} end
local out = {now}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', retry, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))) do
  out[#out + 1] = m
end
return out
