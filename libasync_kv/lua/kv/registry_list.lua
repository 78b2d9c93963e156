-- Lists the versions of a model with what their saves recorded, in one consistent read.
--
-- KEYS[1] versions zset   KEYS[2] tags hash   ARGV[1] the prefix of a version's hash key
-- Returns, oldest first, one array per version: version, metadata, archive_size, files,
-- unpacked_size, created_ms, then the tags pointing to it.
local tags_of = {}
local tags = redis.call('HGETALL', KEYS[2])
for i = 1, #tags, 2 do
  local list = tags_of[tags[i + 1]] or {}
  list[#list + 1] = tags[i]
  tags_of[tags[i + 1]] = list
end
local out = {}
for _, version in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local f = redis.call('HMGET', ARGV[1] .. version, 'metadata', 'archive_size', 'files',
    'unpacked_size', 'created_ms')
  local row = {version, f[1] or '{}', f[2] or '0', f[3] or '0', f[4] or '0', f[5] or '0'}
  for _, t in ipairs(tags_of[version] or {}) do row[#row + 1] = t end
  out[#out + 1] = row
end
return out
