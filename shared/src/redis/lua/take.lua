-- One visit of a worker to one lane of one destination: take tokens from the destination's
-- bucket (shared by the whole cluster and by both lanes, Redis clock), then claim at most that
-- many jobs of the lane's stream: first, when `retake` is 1, the entries pending under this
-- consumer's own name (the worker holds no batch of the lane, so they were taken by a reply it
-- never got, or left by a batch that could not finish); then entries idle past `min_idle_ms`
-- (a dead worker's), at most once per `reclaim_every_ms`; then new ones. Unused tokens are not
-- spent. A destination
-- slowed by a throttling reply (shape.lua) gets its share of the rate and burst; a suspended
-- one gets nothing until the suspension ends.
--
-- Lanes share the bucket by `share` (limits.transactional_share):
-- - bulk never takes the last `share` of the burst, so a transactional job finds a token at once;
-- - while bulk is held back by tokens (it wanted more in the last second), the priority lane
--   also draws on its own sub-bucket refilled at `share` of the rate, so it cannot starve bulk;
-- - when either lane is idle the other may use the whole rate.
-- KEYS: bucket, stream, marker, shape
-- ARGV: want, per_second, burst, group, consumer, min_idle_ms, reclaim_every_ms, lane, share,
-- retake (0/1)
-- Returns {now_ms, wait_ms, more (0/1), pending, reclaimed, entries, deliveries,
-- factor_x1000, suspended_ms, retaken, own_rest (0/1)}: `deliveries[k]` is how often
-- `entries[k]` has been handed out (1 for a new one); factor and suspension show the shape in
-- force; `own_rest` is 1 when entries of this consumer's own may be left to retake.
local bucket, stream, marker, shape = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local want, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local group, consumer = ARGV[4], ARGV[5]
local priority, share = ARGV[8] == 'priority', tonumber(ARGV[9])
local now = now_ms()

local s = redis.call('HMGET', shape, 'factor', 'until', 'ramp', 'suspend_until')
local factor = effective_factor(tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), now)
local suspended = math.max(0, (tonumber(s[4]) or 0) - now)
if suspended > 0 then
  local pending = redis.call('XPENDING', stream, group)[1]
  return {now, suspended, 1, pending, 0, {}, {}, math.floor(factor * 1000), suspended, 0, tonumber(ARGV[10])}
end
rate = rate * factor
burst = math.max(1, math.floor(burst * factor))

local b = redis.call('HMGET', bucket, 'tokens', 'ts', 'ptokens', 'bulk_held')
local elapsed = math.max(0, now - (tonumber(b[2]) or now))
local tokens = math.min(burst, (tonumber(b[1]) or burst) + elapsed * rate / 1000)
local pburst = math.max(1, burst * share)
local ptokens = math.min(pburst, (tonumber(b[3]) or pburst) + elapsed * rate * share / 1000)
local reserve = math.min(burst * share, burst - 1)
local contended = now - (tonumber(b[4]) or 0) < 1000

-- What this lane may spend now, and the rate at which that grows.
local avail, lane_rate
if priority then
  avail, lane_rate = tokens, rate
  if contended and share > 0 then avail, lane_rate = math.min(tokens, ptokens), rate * share end
else
  avail, lane_rate = tokens - reserve, rate
end
local allowed = math.min(want, math.floor(math.max(0, avail)))

local entries, deliveries, reclaimed, retaken, more = {}, {}, 0, 0, 0
local own_rest = tonumber(ARGV[10])
if allowed > 0 then
  if own_rest == 1 then
    local mine = redis.call('XPENDING', stream, group, '-', '+', allowed, consumer)
    if #mine > 0 then
      local ids, counts = {}, {}
      for i, p in ipairs(mine) do
        ids[i] = p[1]
        counts[p[1]] = p[4]
      end
      -- Entries deleted meanwhile leave the pending list and are not returned (Redis >= 7).
      for _, e in ipairs(redis.call('XCLAIM', stream, group, consumer, 0, unpack(ids))) do
        if e then
          entries[#entries + 1] = e
          deliveries[#deliveries + 1] = counts[e[1]] + 1
        end
      end
    end
    retaken = #entries
    if #mine < allowed then own_rest = 0 end
  end
  local room = allowed - #entries
  if room > 0 and redis.call('SET', marker, '1', 'NX', 'PX', ARGV[7]) then
    local r = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[6], '0-0', 'COUNT', room)
    for _, e in ipairs(r[2]) do
      if e then
        entries[#entries + 1] = e
        local p = redis.call('XPENDING', stream, group, e[1], e[1], 1)
        deliveries[#deliveries + 1] = p[1] and p[1][4] or 1
      end
    end
    reclaimed = #entries - retaken
  end
  room = allowed - #entries
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
local fields = {'tokens', tokens, 'ts', now, 'ptokens', ptokens}
if priority then
  fields[6] = math.max(0, ptokens - #entries)
elseif allowed < want and more == 1 then
  -- Bulk wanted more than the tokens allowed and the stream had it: bulk is waiting.
  fields[#fields + 1] = 'bulk_held'
  fields[#fields + 1] = now
end
redis.call('HSET', bucket, unpack(fields))
redis.call('PEXPIRE', bucket, math.ceil(burst / rate * 1000) + 60000)

local wait = 0
local left = avail - #entries
if #entries < want and more == 1 and left < 1 then
  wait = math.ceil((1 - left) * 1000 / lane_rate)
end
local pending = redis.call('XPENDING', stream, group)[1]
return {now, wait, more, pending, reclaimed, entries, deliveries, math.floor(factor * 1000), 0, retaken, own_rest}
