-- Sets a field of an LRU dict, makes it the most recently used, and evicts the least recently
-- used fields beyond the maximum size: one atomic move, so concurrent setters never leave the
-- dict over its size or an entry without its access time.
-- Access times are a logical clock (the highest score + 1), not TIME: two accesses within one
-- microsecond must still be ordered.
--
-- KEYS[1] hash (field -> value)   KEYS[2] sorted set (field -> access time), same hash tag
-- ARGV[1] max size   ARGV[2] field   ARGV[3] value
-- Returns the evicted fields, least recently used first.
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local now = 1
if newest[2] then now = tonumber(newest[2]) + 1 end
redis.call('ZADD', KEYS[2], now, ARGV[2])
local evicted = {}
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[1])
if excess > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], excess)
  for i = 1, #oldest, 2 do
    redis.call('HDEL', KEYS[1], oldest[i])
    evicted[#evicted + 1] = oldest[i]
  end
end
return evicted
