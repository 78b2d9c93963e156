-- Makes one generation of chunks the content of an object: the manifest flips to it in one
-- step, so a reader sees the old object or the new one, never a mix. The store's totals move
-- by the difference in the same step, and the old generation is retired.
--
-- KEYS[1] manifest   KEYS[2] readers   KEYS[3] the store's info hash
-- ARGV[1] chunk key start   ARGV[2] generation   ARGV[3] size   ARGV[4] chunks
-- ARGV[5] chunk_size   ARGV[6] content_type   ARGV[7] n, then n user metadata key/value pairs
-- Returns the generation now in the manifest.
local manifest, readers, info, base = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local gen = ARGV[2]
local size, chunks, chunk_size = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local user_pairs = tonumber(ARGV[7])

local old, problem = manifest_of(manifest)
if problem then return redis.error_reply(problem) end

-- The put wrote them before this call (in the same request for a small object), each with a
-- TTL so that a put that died half way leaves nothing behind: all must still be there, whole.
for i = 0, chunks - 1 do
  local key = chunk_key(base, gen, i)
  local expected = math.min(chunk_size, size - i * chunk_size)
  local held = redis.call('STRLEN', key)
  if held ~= expected then
    return redis.error_reply('blob_store: chunk ' .. key .. ' holds ' .. held .. ' bytes, expected ' ..
                             expected .. ' (did it expire before the commit?)')
  end
end
for i = 0, chunks - 1 do redis.call('PERSIST', chunk_key(base, gen, i)) end

local now = now_ms()
if old then redis.call('DEL', manifest) end
redis.call('HSET', manifest, 'size', ARGV[3], 'chunks', ARGV[4], 'chunk_size', ARGV[5],
           'generation', gen, 'content_type', ARGV[6], 'modified_ms', now)
for i = 8, 7 + 2 * user_pairs, 2 do
  redis.call('HSET', manifest, 'user:' .. ARGV[i], ARGV[i + 1])
end

if old then
  if size ~= old.size then redis.call('HINCRBY', info, 'bytes', size - old.size) end
  retire(base, readers, old.generation, old.chunks, now)
else
  redis.call('HINCRBY', info, 'objects', 1)
  redis.call('HINCRBY', info, 'bytes', size)
end
return gen
