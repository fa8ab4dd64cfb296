-- Erases one address from a stream whose entries may name it in field ARGV[1]:
--   ARGV[3] = 'delete': entries whose field holds the address are deleted;
--   ARGV[3] = 'redact': the address in the field is replaced by ARGV[4], in place.
-- KEYS: stream
-- ARGV[2]: the address (or its URL-encoded form), lower-case. Returns the
-- entries deleted or redacted.
local field, needle, mode, replacement = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local entries = all_entries(KEYS[1])
local first, hits, doomed = nil, 0, {}
for i, entry in ipairs(entries) do
  local fields = entry[2]
  for f = 1, #fields, 2 do
    if fields[f] == field and holds_address(string.lower(fields[f + 1]), needle) then
      hits = hits + 1
      if mode == 'delete' then
        doomed[#doomed + 1] = entry[1]
      else
        fields[f + 1] = replace_address(fields[f + 1], needle, replacement)
        first = first or i
      end
    end
  end
end
for i = 1, #doomed, 500 do
  redis.call('XDEL', KEYS[1], unpack(doomed, i, math.min(i + 499, #doomed)))
end
rewrite_from(KEYS[1], entries, first)
return hits
