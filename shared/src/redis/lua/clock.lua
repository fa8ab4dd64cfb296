-- The Redis server's clock in milliseconds: every script uses it, never a client's clock.
-- Prepended to every script when it is loaded.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
