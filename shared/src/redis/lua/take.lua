-- One visit of a worker to one destination domain: take tokens from the domain's bucket
-- (shared by the whole cluster, Redis clock), then claim at most that many jobs: first entries
-- idle past `min_idle_ms` (a dead worker's), at most once per `reclaim_every_ms`, then new ones.
-- Unused tokens are not spent. A destination slowed by a throttling reply (shape.lua) gets
-- its share of the rate and burst; a suspended one gets nothing until the suspension ends.
-- KEYS: bucket, stream, reclaim_marker, shape
-- ARGV: want, per_second, burst, group, consumer, min_idle_ms, reclaim_every_ms
-- Returns {now_ms, wait_ms, more (0/1), pending, reclaimed, entries, deliveries,
-- factor_x1000, suspended_ms}: `deliveries[k]` is how often `entries[k]` has been handed out
-- (1 for a new one); the last two show the shape in force.
local bucket, stream, marker, shape = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local want, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local group, consumer = ARGV[4], ARGV[5]
local now = now_ms()

local s = redis.call('HMGET', shape, 'factor', 'until', 'ramp', 'suspend_until')
local factor = effective_factor(tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), now)
local suspended = math.max(0, (tonumber(s[4]) or 0) - now)
if suspended > 0 then
  local pending = redis.call('XPENDING', stream, group)[1]
  return {now, suspended, 1, pending, 0, {}, {}, math.floor(factor * 1000), suspended}
end
rate = rate * factor
burst = math.max(1, math.floor(burst * factor))

local b = redis.call('HMGET', bucket, 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local allowed = math.min(want, math.floor(tokens))

local entries, deliveries, reclaimed, more = {}, {}, 0, 0
if allowed > 0 then
  if redis.call('SET', marker, '1', 'NX', 'PX', ARGV[7]) then
    local r = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[6], '0-0', 'COUNT', allowed)
    for _, e in ipairs(r[2]) do
      if e then
        entries[#entries + 1] = e
        local p = redis.call('XPENDING', stream, group, e[1], e[1], 1)
        deliveries[#deliveries + 1] = p[1] and p[1][4] or 1
      end
    end
    reclaimed = #entries
  end
  local room = allowed - #entries
  if room > 0 then
    local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', room, 'STREAMS', stream, '>')
    local got = 0
    if r then
      for _, e in ipairs(r[1][2]) do
        entries[#entries + 1] = e
        deliveries[#deliveries + 1] = 1
        got = got + 1
      end
    end
    if got == room then more = 1 end
  else
    more = 1
  end
else
  more = 1
end

tokens = tokens - #entries
redis.call('HSET', bucket, 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', bucket, math.ceil(burst / rate * 1000) + 60000)

local wait = 0
if #entries < want and more == 1 and tokens < 1 then
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
local pending = redis.call('XPENDING', stream, group)[1]
return {now, wait, more, pending, reclaimed, entries, deliveries, math.floor(factor * 1000), 0}
