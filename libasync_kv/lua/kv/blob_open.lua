-- Opens an object of several chunks for reading: its manifest, and a lease on its generation.
-- While the lease lasts, a commit or erase that retires the generation leaves its chunks in
-- place for this reader, who then reads them with plain GETs.
--
-- KEYS[1] manifest   KEYS[2] readers
-- ARGV[1] lease (ms)   ARGV[2] this reader's token
-- Returns nil if there is no such object, else {manifest field/value list, lease end (ms)}.
local m, problem = manifest_of(KEYS[1])
if problem then return redis.error_reply(problem) end
if not m then return nil end
local now = now_ms()
local expiry = now + tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], expiry, m.generation .. ':' .. ARGV[2])
hold_readers(KEYS[2], expiry)
return {m.fields, expiry}
