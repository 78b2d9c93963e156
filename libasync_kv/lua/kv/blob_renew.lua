-- Extends a reader's lease on a generation (blob_open.lua). If the generation was retired in
-- the meantime, its chunks are kept for the new lease too.
--
-- KEYS[1] manifest   KEYS[2] readers
-- ARGV[1] chunk key start   ARGV[2] generation   ARGV[3] its chunk count   ARGV[4] token
-- ARGV[5] lease (ms)
-- Returns the lease's new end (ms), or 0 if the lease was lost: it ran out after the generation
-- was retired, so its chunks may be gone.
local base, gen, chunks = ARGV[1], ARGV[2], tonumber(ARGV[3])
local member = gen .. ':' .. ARGV[4]
local now = now_ms()
local lease = tonumber(redis.call('ZSCORE', KEYS[2], member))
local retired = redis.call('HGET', KEYS[1], 'generation') ~= gen
if retired and (not lease or lease <= now) then return 0 end

local expiry = now + tonumber(ARGV[5])
redis.call('ZADD', KEYS[2], expiry, member)
hold_readers(KEYS[2], expiry)
if retired then
  for i = 0, chunks - 1 do redis.call('PEXPIREAT', chunk_key(base, gen, i), expiry, 'GT') end
end
return expiry
