-- One API key's send rate across the whole cluster (GCRA on the Redis clock): a send is
-- allowed while the key's theoretical arrival time, one interval further, stays within
-- `burst` intervals of now. Allowed sends move it on; refused ones do not.
-- KEYS: tat
-- ARGV: interval_ms (1000 / rate), burst
-- Returns 0 if the send may go now, else how many ms until it may.
local tat = KEYS[1]
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = now_ms()
local next_tat = math.max(tonumber(redis.call('GET', tat) or now) or now, now) + interval
local wait = next_tat - now - interval * burst
if wait > 0 then return math.ceil(wait) end
redis.call('SET', tat, string.format('%.3f', next_tat), 'PX', math.ceil(next_tat - now) + 1000)
return 0
