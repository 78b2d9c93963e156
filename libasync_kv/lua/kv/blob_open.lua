-- Opens an object for reading. A small one comes whole with its manifest, read in one step. A
-- larger one comes as its manifest and a lease on its generation: while the lease lasts, a
-- commit or erase that retires the generation leaves its chunks in place for this reader.
--
-- KEYS[1] manifest   KEYS[2] readers
-- ARGV[1] chunk key start   ARGV[2] largest size read whole   ARGV[3] lease (ms)
-- ARGV[4] this reader's token
-- Returns nil if there is no such object, else {manifest field/value list, lease end in ms
-- (0: no lease, the chunks follow), {chunks}}.
local m, problem = manifest_of(KEYS[1])
if problem then return redis.error_reply(problem) end
if not m then return nil end

if m.size <= tonumber(ARGV[2]) then
  local chunks = {}
  for i = 0, m.chunks - 1 do
    chunks[#chunks + 1] = redis.call('GET', chunk_key(ARGV[1], m.generation, i))
  end
  return {m.fields, 0, chunks}
end

local now = now_ms()
local expiry = now + tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], expiry, m.generation .. ':' .. ARGV[4])
hold_readers(KEYS[2], expiry)
return {m.fields, expiry, {}}
