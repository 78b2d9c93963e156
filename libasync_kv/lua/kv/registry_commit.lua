-- Records a saved version of a model and moves `latest` to it: the one step that makes a save
-- visible, taken only after its archive is stored. `latest` never moves backwards, so of two
-- concurrent saves the higher version ends as the latest whatever order they commit in.
--
-- KEYS[1] versions zset   KEYS[2] latest   KEYS[3] the version's hash (same hash tag)
-- ARGV[1] version   ARGV[2] metadata (JSON text)   ARGV[3] archive_size   ARGV[4] files
-- ARGV[5] unpacked_size
-- Returns the latest version after the commit.
local version = tonumber(ARGV[1])
local now = redis.call('TIME')
local created_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HSET', KEYS[3], 'metadata', ARGV[2], 'archive_size', ARGV[3], 'files', ARGV[4],
  'unpacked_size', ARGV[5], 'created_ms', tostring(created_ms))
redis.call('ZADD', KEYS[1], version, ARGV[1])
local latest = tonumber(redis.call('GET', KEYS[2]) or '0')
if version > latest then
  redis.call('SET', KEYS[2], ARGV[1])
  latest = version
end
return latest
