-- Erases one address from a feed shard: in each run holding it, its events keep their place
-- (indexes inside a run are cursors) but lose the address and their data.
-- KEYS: feed
-- ARGV: the address, lower-case. Returns the events redacted.
local needle = ARGV[1]
local entries = all_entries(KEYS[1])
local first, redacted = nil, 0
for i, entry in ipairs(entries) do
  local fields = entry[2]
  for f = 1, #fields, 2 do
    if fields[f] == 'ev' and holds_address(string.lower(fields[f + 1]), needle) then
      local rows = cjson.decode(fields[f + 1])
      for _, row in ipairs(rows) do
        if string.lower(row[4]) == needle then
          row[4] = ''
          row[5] = '{"erased":true}'
          redacted = redacted + 1
        end
      end
      fields[f + 1] = cjson.encode(rows)
      first = first or i
    end
  end
end
rewrite_from(KEYS[1], entries, first)
return redacted
