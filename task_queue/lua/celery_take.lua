-- Takes up to ARGV[1] Celery task messages from a queue's lists, highest priority first, and
-- records each as delivered the way kombu's Redis transport does (QoS.append): the message
-- with its exchange and routing key in the hash `unacked` under its delivery tag, the tag in
-- the sorted set `unacked_index` scored with the time of delivery. Until acked, a message
-- left there longer than the visibility timeout is put back on its queue (celery_restore.lua,
-- or any Python worker's restore_visible). kombu pops and records in two calls; here it is one
-- step, so a worker that dies in between loses nothing.
--
-- A message without a delivery tag cannot be recorded (nor acked): it goes straight to the
-- dead-letter list, with the reason.
--
-- KEYS: unacked, unacked_index, dead_letters, list... (the queue's lists, priority order)
-- ARGV: max, now (seconds since the epoch, fractional), dead-letter time (ISO 8601),
--       [list, message]... (messages popped already, by BRPOP: recorded first)
-- Returns: {list, message, tag, ...}; tag '' for a message set aside.
local max = tonumber(ARGV[1])
local out = {}
-- The value of "field": "..." in the message: a plain search first (memmem), the pattern only
-- where it starts, so a message of a few KB costs little.
local function field(msg, name)
  local at = string.find(msg, '"' .. name .. '"', 1, true)
  if not at then return nil end
  return string.match(msg, '^"[^"]*":%s*"([^"\\]*)"', at)
end
local function take(list, msg)
  local tag = field(msg, 'delivery_tag')
  if tag == '' then tag = nil end
  if not tag then
    redis.call('RPUSH', KEYS[3], cjson.encode({
      reason = 'malformed envelope: no properties.delivery_tag', queue = list,
      message = msg, at = ARGV[3]}))
    tag = ''
  else
    local ex = field(msg, 'exchange') or ''
    local rk = field(msg, 'routing_key') or list
    redis.call('ZADD', KEYS[2], ARGV[2], tag)
    redis.call('HSET', KEYS[1], tag,
      '[' .. msg .. ', ' .. cjson.encode(ex) .. ', ' .. cjson.encode(rk) .. ']')
  end
  out[#out + 1] = list
  out[#out + 1] = msg
  out[#out + 1] = tag
end
local taken = 0
for i = 4, #ARGV, 2 do
  take(ARGV[i], ARGV[i + 1])
  taken = taken + 1
end
for k = 4, #KEYS do
  if taken >= max then break end
  local msgs = redis.call('RPOP', KEYS[k], max - taken)
  if msgs then
    for _, msg in ipairs(msgs) do
      take(KEYS[k], msg)
      taken = taken + 1
    end
  end
end
return out
