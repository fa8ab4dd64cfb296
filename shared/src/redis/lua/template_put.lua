-- Stores a new version of a template and returns its number (1 for a new template).
-- KEYS: template
-- ARGV: version_json_without_number (the caller's fields; `version` is added here)
local n = redis.call('HINCRBY', KEYS[1], 'latest', 1)
local v = cjson.decode(ARGV[1])
v.version = n
v.created_at_ms = now_ms()
redis.call('HSET', KEYS[1], 'v' .. n, cjson.encode(v))
return n
