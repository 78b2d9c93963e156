-- Django Channels' group_send (channels_redis 4.0, RedisChannelLayer) to the group's members:
-- each key's expired messages dropped, then the member's message added unless the key holds
-- capacity messages already, and the key's expiry renewed.
-- KEYS: the members' sorted sets. ARGV: one message per key, one capacity per key, the time
-- now (s), the expiry (s). Returns how many keys were over capacity.
local n = #KEYS
local now, expiry = tonumber(ARGV[2 * n + 1]), tonumber(ARGV[2 * n + 2])
local over = 0
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, math.floor(now) - expiry)
  if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then
    redis.call('ZADD', KEYS[i], ARGV[2 * n + 1], ARGV[i])
    redis.call('EXPIRE', KEYS[i], expiry)
  else
    over = over + 1
  end
end
return over
