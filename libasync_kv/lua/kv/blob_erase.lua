-- Deletes an object: its manifest, its share of the store's totals and its chunks (at once,
-- or when the last reader holding a lease on them is done). A missing object changes nothing.
--
-- KEYS[1] manifest   KEYS[2] readers   KEYS[3] the store's info hash
-- ARGV[1] chunk key start
-- Returns 1 if the object existed, else 0.
local old, problem = manifest_of(KEYS[1])
if problem then return redis.error_reply(problem) end
if not old then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HINCRBY', KEYS[3], 'objects', -1)
redis.call('HINCRBY', KEYS[3], 'bytes', -old.size)
retire(ARGV[1], KEYS[2], old.generation, old.chunks, now_ms())
return 1
