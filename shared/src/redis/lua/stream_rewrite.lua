-- Helpers of the scripts that edit stream entries in place (erasing an address). An entry
-- cannot be changed, so every entry from the first changed one to the end is deleted and
-- added again under its own id (the stream's last id is moved back first): readers' cursors,
-- which are entry ids, stay valid, and nothing is reordered.

-- Whether `text` holds `needle` (both lower-case) as a whole address: not inside a longer one.
local function holds_address(text, needle)
  local from = 1
  while true do
    local s, e = string.find(text, needle, from, true)
    if not s then return false end
    local before = s > 1 and string.sub(text, s - 1, s - 1) or ''
    local after = string.sub(text, e + 1, e + 1)
    if not string.find(before, '[%w%.%%%+%-_]') and not string.find(after, '[%w%.%-_]') then return true end
    from = s + 1
  end
end

-- `text` with every whole-address occurrence of `needle` (case-insensitive) replaced.
local function replace_address(text, needle, replacement)
  local lower, out, from = string.lower(text), {}, 1
  while true do
    local s, e = string.find(lower, needle, from, true)
    if not s then break end
    local before = s > 1 and string.sub(lower, s - 1, s - 1) or ''
    local after = string.sub(lower, e + 1, e + 1)
    if not string.find(before, '[%w%.%%%+%-_]') and not string.find(after, '[%w%.%-_]') then
      out[#out + 1] = string.sub(text, from, s - 1) .. replacement
    else
      out[#out + 1] = string.sub(text, from, e)
    end
    from = e + 1
  end
  out[#out + 1] = string.sub(text, from)
  return table.concat(out)
end

-- Deletes `tail` (entries {id, flat fields} in order, the last ones of `key`) and adds them
-- again with the same ids and their fields as they are now.
local function rewrite_tail(key, tail)
  if #tail == 0 then return end
  for i = 1, #tail, 500 do
    local ids = {}
    for j = i, math.min(i + 499, #tail) do ids[#ids + 1] = tail[j][1] end
    redis.call('XDEL', key, unpack(ids))
  end
  local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  local last = top[1] and top[1][1] or '0-0'
  redis.call('XSETID', key, last, 'MAXDELETEDID', last)
  for _, entry in ipairs(tail) do
    redis.call('XADD', key, entry[1], unpack(entry[2]))
  end
end

-- Rewrites `entries` (all of `key`, some edited in place) from the `first` edited one on;
-- nothing when none was.
local function rewrite_from(key, entries, first)
  if not first then return end
  local tail = {}
  for i = first, #entries do tail[#tail + 1] = entries[i] end
  rewrite_tail(key, tail)
end

-- Every entry of `key` from its start, {id, flat fields}, read a page at a time.
local function all_entries(key)
  local out, from = {}, '-'
  while true do
    local page = redis.call('XRANGE', key, from, '+', 'COUNT', 1000)
    for _, e in ipairs(page) do out[#out + 1] = e end
    if #page < 1000 then return out end
    from = '(' .. page[#page][1]
  end
end
