-- Adds deltas to embedding vectors, inserting the vectors that are missing: one read-add-write
-- per key with nothing in between, so concurrent trainers never lose an update.
--
-- KEYS[1] bucket hash (field -> D little-endian float32)
-- ARGV[1] D   ARGV[2] expiry in seconds (0: none; else EXPIRE ... NX on the bucket)
-- ARGV[3], ARGV[4], ...: field, delta (D little-endian float32), field, delta, ...
-- Returns the number of keys that were missing (and are now inserted).
local dim = tonumber(ARGV[1])
local format = '<' .. string.rep('f', dim)
local width = 4 * dim
local inserted = 0
for i = 3, #ARGV, 2 do
  local field = ARGV[i]
  local delta = ARGV[i + 1]
  if #delta ~= width then
    return redis.error_reply('ERR embedding delta of ' .. #delta .. ' bytes, expected ' .. width)
  end
  local old = redis.call('HGET', KEYS[1], field)
  if old and #old == width then
    local a = {struct.unpack(format, old)}
    local b = {struct.unpack(format, delta)}
    for j = 1, dim do a[j] = a[j] + b[j] end
    redis.call('HSET', KEYS[1], field, struct.pack(format, unpack(a, 1, dim)))
  else
    redis.call('HSET', KEYS[1], field, delta)
    inserted = inserted + 1
  end
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl, 'NX') end
return inserted
