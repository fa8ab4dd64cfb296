-- Adds or removes unsubscribes: each of one address, from every campaign (list '') or from
-- one list. An address unsubscribed from every campaign is unsubscribed from every list too.
-- KEYS: unsubscribed
-- ARGV: 'add' or 'remove', then per unsubscribe: address, list ('' for every campaign),
--       entry JSON ('' with 'remove')
-- Returns how many changed something.
-- Stored: {"scope":"campaigns", reason...} or {"scope":"lists","lists":{name: {reason...}}}.
local function add(address, list, entry)
  local current = redis.call('HGET', KEYS[1], address)
  local record = current and cjson.decode(current)
  if record and record.scope == 'campaigns' then return 0 end
  if list == '' then
    redis.call('HSET', KEYS[1], address, entry)
    return 1
  end
  record = record or {scope = 'lists', lists = {}}
  if record.lists[list] then return 0 end
  record.lists[list] = cjson.decode(entry)
  redis.call('HSET', KEYS[1], address, cjson.encode(record))
  return 1
end

local function remove(address, list)
  local current = redis.call('HGET', KEYS[1], address)
  if not current then return 0 end
  local record = cjson.decode(current)
  if list == '' then
    redis.call('HDEL', KEYS[1], address)
    return 1
  end
  if record.scope ~= 'lists' or not record.lists[list] then return 0 end
  record.lists[list] = nil
  if next(record.lists) == nil then
    redis.call('HDEL', KEYS[1], address)
  else
    redis.call('HSET', KEYS[1], address, cjson.encode(record))
  end
  return 1
end

local changed = 0
for i = 2, #ARGV, 3 do
  if ARGV[1] == 'add' then
    changed = changed + add(ARGV[i], ARGV[i + 1], ARGV[i + 2])
  else
    changed = changed + remove(ARGV[i], ARGV[i + 1])
  end
end
return changed
