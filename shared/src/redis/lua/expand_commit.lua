-- Records that the `n` staged recipients from the cursor on were pushed into domain streams
-- (they stay in the staged list until the campaign ends: see expand_peek.lua).
-- Compare-and-set on the cursor: a second scheduler that expanded the same chunk loses here,
-- and the jobs it pushed are stale duplicates that decide.lua skips.
-- KEYS: the campaign's (campaign_prelude.lua)
-- ARGV: expected_cursor, n, queued_n, events_maxlen, suppressed_n, dormant_n, then (index,
--       address) per suppressed recipient, then per dormant one (skipped by the sunset policy),
--       then per queued one (each gets a `queued` event)
-- Returns 1 if committed, 0 if another scheduler did it first.
if (redis.call('HGET', meta, 'cursor') or '0') ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[2])
local suppressed, dormant = tonumber(ARGV[5]), tonumber(ARGV[6])
local dormant_from = 7 + 2 * suppressed
local queued_from = dormant_from + 2 * dormant
-- Cancelled between peek and commit: the cancel already counted these recipients (it dropped
-- the staged list), so no count moves; the jobs already pushed are marked cancelled, so the
-- worker that meets one skips it instead of counting it a second time.
if redis.call('HGET', meta, 'status') == 'cancelled' then
  redis.call('HINCRBY', meta, 'cursor', n)
  for i = queued_from, #ARGV, 2 do
    redis.call('HSET', state, ARGV[i], 'x')
  end
  return 1
end
redis.call('HINCRBY', meta, 'cursor', n)
redis.call('HINCRBY', counts, 'staged', -n)
redis.call('HINCRBY', counts, 'queued', tonumber(ARGV[3]))
for i = 7, dormant_from - 1, 2 do
  redis.call('HSET', state, ARGV[i], 'u')
  event(events, ARGV[4], 'suppressed', ARGV[i], ARGV[i + 1], '{}')
end
if suppressed > 0 then redis.call('HINCRBY', counts, 'suppressed', suppressed) end
for i = dormant_from, queued_from - 1, 2 do
  redis.call('HSET', state, ARGV[i], 'z')
  event(events, ARGV[4], 'dormant', ARGV[i], ARGV[i + 1], '{}')
end
if dormant > 0 then redis.call('HINCRBY', counts, 'dormant', dormant) end
for i = queued_from, #ARGV, 2 do
  event(events, ARGV[4], 'queued', ARGV[i], ARGV[i + 1], '{}')
end
maybe_complete(meta, counts, now_ms())
return 1
