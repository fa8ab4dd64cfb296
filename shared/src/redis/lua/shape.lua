-- Slows or suspends one destination for every worker, after a reply that asked for it.
-- A slow cuts the rate to `factor` until `until`, then ramps back linearly over `ramp` ms;
-- a second slow while one is active keeps the lower factor and the later end.
-- KEYS: shape
-- ARGV: kind (slow|suspend), factor, duration_ms
-- Returns the effective factor now (x1000) and the suspension end (ms, 0 if none).
local shape, kind, factor, duration = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local s = redis.call('HMGET', shape, 'factor', 'until', 'ramp', 'suspend_until')
local current = effective_factor(tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), now)
local suspend_until = tonumber(s[4]) or 0
local until_ms = tonumber(s[2]) or 0
local ramp = tonumber(s[3]) or 0
if kind == 'suspend' then
  suspend_until = math.max(suspend_until, now + duration)
  redis.call('HSET', shape, 'suspend_until', suspend_until)
else
  current = math.min(current, factor)
  until_ms = math.max(until_ms, now + duration)
  ramp = math.max(ramp, duration)
  redis.call('HSET', shape, 'factor', current, 'until', until_ms, 'ramp', ramp)
end
local ends = math.max(suspend_until, until_ms + ramp)
redis.call('PEXPIRE', shape, math.max(1, ends - now) + 60000)
return {math.floor(current * 1000), suspend_until}
