-- Acknowledges handled entries and deletes them, in one step so a stream never keeps
-- entries that are neither pending nor deliverable.
-- KEYS: stream
-- ARGV: group, entry ids
local ids = {unpack(ARGV, 2)}
if #ids == 0 then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
return redis.call('XDEL', KEYS[1], unpack(ids))
