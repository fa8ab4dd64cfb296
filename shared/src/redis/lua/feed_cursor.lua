-- Remembers how far a source's events were copied into the feed, in its meta hash, unless
-- the source is gone (expired): a cursor must never bring back a meta without a spec.
-- KEYS: meta
-- ARGV: last copied entry id
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'fed', ARGV[1])
return 1
