-- Reads and counts the sends of a chunk's recipients in one engagement group (one slot): a
-- dormant address (past the sunset policy) is reported and left as it is; every other one
-- counts a send today.
-- KEYS: buckets (one per address, in ARGV's order; repeats allowed)
-- ARGV: today (days since 2019-12-31), sunset_after_sends (0: off), sunset_after_days (0: off),
--       include_dormant ('1' or '0'), then the addresses
-- Returns one flag per address: 1 dormant (skipped), 0 sent.
-- A record is 10 bytes: first seen, last sent, last real open, last click (days, 0 never) and
-- sends since the last engagement, each a little-endian u16.
local today, after_sends, after_days = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local include = ARGV[4] == '1'
local policy = after_sends > 0 or after_days > 0
local out = {}
for i = 1, #KEYS do
  local address = ARGV[4 + i]
  local stored = redis.call('HGET', KEYS[i], address)
  local first, sent, opened, clicked, sends = today, 0, 0, 0, 0
  if stored then first, sent, opened, clicked, sends = struct.unpack('<HHHHH', stored) end
  local since = math.max(first, opened, clicked)
  local dormant = policy and stored
    and (after_sends == 0 or sends >= after_sends)
    and (after_days == 0 or today - since >= after_days)
  if dormant and not include then
    out[i] = 1
  else
    out[i] = 0
    redis.call('HSET', KEYS[i], address, struct.pack('<HHHHH', first, today, opened, clicked, math.min(sends + 1, 65535)))
  end
end
return out
