-- Ends a reader's lease on a generation (blob_open.lua). If the generation was retired while
-- it was read and no other reader holds it, its chunks go now rather than when they expire.
--
-- KEYS[1] manifest   KEYS[2] readers
-- ARGV[1] chunk key start   ARGV[2] generation   ARGV[3] its chunk count   ARGV[4] token
-- Returns 1 if the generation's chunks were deleted, else 0.
local base, gen, chunks = ARGV[1], ARGV[2], tonumber(ARGV[3])
redis.call('ZREM', KEYS[2], gen .. ':' .. ARGV[4])
if redis.call('HGET', KEYS[1], 'generation') == gen then return 0 end
if lease_end(KEYS[2], gen, now_ms()) > 0 then return 0 end
unlink_chunks(base, gen, chunks)
return 1
