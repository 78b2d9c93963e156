-- Puts delivered Celery messages back on their queues, as kombu's restore_by_tag does: the
-- message leaves `unacked` and `unacked_index`, gets headers.redelivered and
-- delivery_info.redelivered, and is pushed on the right of each queue its exchange routes its
-- routing key to (the default exchange "": the queue named by the routing key), so it is the
-- next one taken. Atomic, so it needs no unacked_mutex: a Python worker restoring at the same
-- time watches `unacked` and gives way.
--
-- Two modes:
--   visible: the tags delivered before ARGV[2] (seconds since the epoch), at most ARGV[3]
--            (kombu's restore_visible: their worker is presumed dead);
--   tags:    the tags ARGV[2...] (a worker handing back what it will not run).
--
-- KEYS: unacked, unacked_index, dead_letters
-- ARGV: mode, ...; the dead-letter time (ISO 8601) last
-- Returns: the number of messages put back.
local sep = '\6\22'
local tags
local at = ARGV[#ARGV]
if ARGV[1] == 'visible' then
  tags = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
else
  tags = {}
  for i = 2, #ARGV - 1 do tags[#tags + 1] = ARGV[i] end
end
local restored = 0
for _, tag in ipairs(tags) do
  local p = redis.call('HGET', KEYS[1], tag)
  redis.call('ZREM', KEYS[2], tag)
  redis.call('HDEL', KEYS[1], tag)
  if p then
    local msg, ex, rk = string.match(p, '^%[(.*})%s*,%s*"([^"]*)"%s*,%s*"([^"]*)"%s*%]$')
    if not msg then
      redis.call('RPUSH', KEYS[3], cjson.encode({
        reason = 'an unacked entry that does not read as [message, exchange, routing_key]',
        queue = '', message = p, at = at}))
    else
      if not string.find(msg, '"redelivered"', 1, true) then
        for _, field in ipairs({'headers', 'delivery_info'}) do
          msg = string.gsub(msg, '"' .. field .. '":%s*{%s*(.)', function(c)
            if c == '}' then return '"' .. field .. '": {"redelivered": true}' end
            return '"' .. field .. '": {"redelivered": true, ' .. c
          end, 1)
        end
      end
      local queues = {}
      if ex ~= '' then
        for _, b in ipairs(redis.call('SMEMBERS', '_kombu.binding.' .. ex)) do
          local brk, _, q = string.match(b, '^(.-)' .. sep .. '(.-)' .. sep .. '(.*)$')
          if brk == rk and q then queues[#queues + 1] = q end
        end
      end
      if #queues == 0 then queues[1] = rk end
      for _, q in ipairs(queues) do redis.call('RPUSH', q, msg) end
      restored = restored + 1
    end
  end
end
return restored
