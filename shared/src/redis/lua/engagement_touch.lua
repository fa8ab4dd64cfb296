-- Records a real open or a click of one address: its engagement is today, its count of sends
-- since the last engagement starts over.
-- KEYS: bucket
-- ARGV: 'open' or 'click', today (days since 2019-12-31), address
local today = tonumber(ARGV[2])
local stored = redis.call('HGET', KEYS[1], ARGV[3])
local first, sent, opened, clicked = today, 0, 0, 0
if stored then first, sent, opened, clicked = struct.unpack('<HHHHH', stored) end
if ARGV[1] == 'open' then opened = today else clicked = today end
redis.call('HSET', KEYS[1], ARGV[3], struct.pack('<HHHHH', first, sent, opened, clicked, 0))
return 1
