-- Reads the next chunk of staged recipients of a running campaign.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: chunk, window
-- Returns {status, cursor, now_ms, expansion options JSON ('' if none), recipient JSON...}; no recipients unless running and
-- fewer than `window` jobs are queued.
local status = redis.call('HGET', meta, 'status') or ''
local cursor = redis.call('HGET', meta, 'cursor') or '0'
local out = {status, cursor, now_ms(), redis.call('HGET', meta, 'expand') or ''}
if status ~= 'running' then return out end
if count(counts, 'queued') >= tonumber(ARGV[2]) then return out end
-- The staged list keeps every recipient while the campaign runs (the reconcile duty puts a
-- lost job back from it); the cursor is the index of the next one to expand.
local from = tonumber(cursor)
for _, r in ipairs(redis.call('LRANGE', staged, from, from + tonumber(ARGV[1]) - 1)) do
  out[#out + 1] = r
end
return out
