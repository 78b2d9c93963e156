-- Deletes a version of a model from the registry: its entry, the tags that point to it, and, if
-- it was the latest, moves `latest` to the highest remaining version (or removes it). The
-- archive is deleted after this, so no reader resolves the version to a missing archive.
--
-- KEYS[1] versions zset   KEYS[2] latest   KEYS[3] the version's hash   KEYS[4] tags hash
-- ARGV[1] version
-- Returns 1 if the version existed, 0 otherwise.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3])
local tags = redis.call('HGETALL', KEYS[4])
for i = 1, #tags, 2 do
  if tags[i + 1] == ARGV[1] then redis.call('HDEL', KEYS[4], tags[i]) end
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  local highest = redis.call('ZRANGE', KEYS[1], -1, -1)
  if highest[1] then
    redis.call('SET', KEYS[2], highest[1])
  else
    redis.call('DEL', KEYS[2])
  end
end
return 1
