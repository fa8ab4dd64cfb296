-- Lists the entries of one campaign that wait in a lane's stream and were not yet handed to
-- any worker (after the group's last delivered id), so a cancelled or paused campaign's jobs
-- can be swept out in bulk instead of drained one token at a time. Reads only; the caller
-- settles the jobs on the campaign (decide.lua) and then deletes the entries.
-- KEYS: stream
-- ARGV: group, campaign, after (an entry id to scan past, or '' to start at the group's
--       last delivered id), scan (entries to look at, at most), limit (entries to return)
-- Returns {cursor, done (0/1), entries}: `cursor` is the last entry looked at (pass it as
-- `after` to go on); `done` once the stream's end was reached.
local stream = KEYS[1]
local group, campaign, after = ARGV[1], ARGV[2], ARGV[3]
local scan, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('EXISTS', stream) == 0 then return {'', 1, {}} end
if after == '' then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local name, delivered
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] end
      if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
    end
    if name == group then after = delivered end
  end
  if after == '' then return {'', 1, {}} end
end
-- Read in rounds of at most what may still be found: no entry is read that could not be
-- returned (turning entries into Lua tables is most of the cost).
local found, cursor, seen, done = {}, after, 0, 0
while seen < scan and #found < limit do
  local want = math.min(limit - #found, scan - seen)
  local batch = redis.call('XRANGE', stream, '(' .. cursor, '+', 'COUNT', want)
  for _, e in ipairs(batch) do
    cursor = e[1]
    seen = seen + 1
    -- Jobs are written with the campaign first (`c`, model.rs Job::to_fields).
    if e[2][1] == 'c' and e[2][2] == campaign then found[#found + 1] = e end
  end
  if #batch < want then
    done = 1
    break
  end
end
return {cursor, done, found}
