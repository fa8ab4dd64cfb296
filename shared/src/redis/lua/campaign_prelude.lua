-- Helpers shared by every script that works on one campaign's keys (hash tag {c:ID}).
-- Prepended to those scripts when they are loaded (after clock.lua).

-- Every campaign script takes the campaign's keys in this one order, which the Rust side
-- builds from the same list (redis/scripts/mod.rs, CAMPAIGN_KEYS; a test pins the two).
local meta, state, counts, retry, events, staged, late = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]

local function count(counts, field)
  return tonumber(redis.call('HGET', counts, field) or 0) or 0
end

-- A running campaign with nothing staged, queued or deferred is complete; its staged list
-- (kept for the reconcile duty) goes.
local function maybe_complete(meta, counts, now)
  if redis.call('HGET', meta, 'status') ~= 'running' then return end
  if count(counts, 'staged') > 0 or count(counts, 'queued') > 0 or count(counts, 'deferred') > 0 then return end
  redis.call('HSET', meta, 'status', 'completed', 'completed_at', now)
  redis.call('UNLINK', staged)
end

-- Whether a job (attempt, stream entry) may act on the recipient given its recorded state:
-- a first attempt needs no state, a retry needs the deferral of the attempt before it, and a
-- reclaimed entry finds its own in-flight mark. Anything else is a stale duplicate.
local function job_is_current(state, attempt, entry)
  if state == false then return attempt == 0 end
  if state == ('d' .. (attempt - 1)) then return true end
  return state == ('q' .. attempt .. ':' .. entry)
end

local function event(events, maxlen, kind, idx, rcpt, data)
  redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'type', kind, 'i', idx, 'r', rcpt, 'data', data)
end

-- RPUSH ARGV[first..] onto `key` in chunks (Lua's unpack has a stack limit).
local function push_args(key, first)
  local i = first
  while i <= #ARGV do
    local last = math.min(i + 999, #ARGV)
    redis.call('RPUSH', key, unpack(ARGV, i, last))
    i = last + 1
  end
end
