-- Moves one entry of the suppression list that an unsubscribe made before unsubscribes had
-- their own scope: it keeps the address from campaigns only. Nothing happens when the entry
-- changed since it was read (a bounce since then suppresses everything, as it should).
-- KEYS: suppressed, unsubscribed
-- ARGV: address, the entry as read
-- Returns 1 when moved, else 0.
local suppressed, unsubscribed = KEYS[1], KEYS[2]
if redis.call('HGET', suppressed, ARGV[1]) ~= ARGV[2] then return 0 end
local entry = cjson.decode(ARGV[2])
entry.scope = 'campaigns'
redis.call('HDEL', suppressed, ARGV[1])
redis.call('HSETNX', unsubscribed, ARGV[1], cjson.encode(entry))
return 1
