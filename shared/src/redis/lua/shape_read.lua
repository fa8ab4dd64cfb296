-- Reads a destination's shape as take.lua applies it, for the API.
-- KEYS: shape
-- Returns {now_ms, factor_x1000, slowed_until_ms (0: none), ramp_ms, suspend_until_ms (0: none)}.
local s = redis.call('HMGET', KEYS[1], 'factor', 'until', 'ramp', 'suspend_until')
local now = now_ms()
local factor = effective_factor(tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), now)
return {now, math.floor(factor * 1000), tonumber(s[2]) or 0, tonumber(s[3]) or 0, tonumber(s[4]) or 0}
