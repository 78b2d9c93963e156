-- Reads a field of an LRU dict and, when it is there, makes it the most recently used (the
-- read and the touch are one atomic move: an eviction cannot fall between them).
--
-- KEYS[1] hash (field -> value)   KEYS[2] sorted set (field -> access time), same hash tag
-- ARGV[1] field
-- Returns the value, or nil when the field is missing.
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value then
  local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  local now = 1
  if newest[2] then now = tonumber(newest[2]) + 1 end
  redis.call('ZADD', KEYS[2], now, ARGV[1])
end
return value
