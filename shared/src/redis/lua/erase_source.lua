-- Erases one address from a campaign's (or message's) own records: its events are deleted
-- (readers page by entry id, which deleting keeps valid), and its recipients in the staged list
-- (every recipient while the campaign runs) are replaced by `token`, which is on the
-- suppression list, so expansion suppresses those not yet expanded.
-- Refused (nothing changed) while the address has mail in flight: a lifecycle event that is
-- not final yet (queued, deferred, requeued) in a campaign that is not done.
-- KEYS: meta, events, staged
-- ARGV: the address lower-case, the token, and 'check' to only look.
-- Returns {in_flight (0/1), events deleted, staged recipients replaced}.
local meta, events, staged = KEYS[1], KEYS[2], KEYS[3]
local needle, token = ARGV[1], ARGV[2]
local status = redis.call('HGET', meta, 'status')
local done = status == 'completed' or status == 'cancelled' or status == false
local ids, last = {}, nil
local from = '-'
while true do
  local page = redis.call('XRANGE', events, from, '+', 'COUNT', 1000)
  for _, e in ipairs(page) do
    local f, kind, rcpt = e[2], nil, nil
    for i = 1, #f, 2 do
      if f[i] == 'type' then kind = f[i + 1] elseif f[i] == 'r' then rcpt = f[i + 1] end
    end
    if rcpt and string.lower(rcpt) == needle then
      ids[#ids + 1] = e[1]
      if kind == 'queued' or kind == 'deferred' or kind == 'requeued' or kind == 'sent' or kind == 'bounced' or kind == 'failed'
        or kind == 'suppressed' or kind == 'dormant' or kind == 'cancelled' then
        last = kind
      end
    end
  end
  if #page < 1000 then break end
  from = '(' .. page[#page][1]
end
local busy = not done and (last == 'queued' or last == 'deferred' or last == 'requeued')
if busy or ARGV[3] == 'check' then
  return {busy and 1 or 0, 0, 0}
end
for i = 1, #ids, 500 do
  redis.call('XDEL', events, unpack(ids, i, math.min(i + 499, #ids)))
end
local replaced = 0
local n = redis.call('LLEN', staged)
for start = 0, n - 1, 1000 do
  local page = redis.call('LRANGE', staged, start, start + 999)
  for k, item in ipairs(page) do
    if holds_address(string.lower(item), needle) then
      local r = cjson.decode(item)
      if type(r.r) == 'string' and string.lower(r.r) == needle then
        redis.call('LSET', staged, start + k - 1, cjson.encode({r = token}))
        replaced = replaced + 1
      end
    end
  end
end
return {0, #ids, replaced}
