-- A worker's entry in the queue's registry of live workers: its record under its token in
-- `workers`, with the server's time of this heartbeat spliced in first as "last_seen_ms", and
-- its deadline (now + expiry) in `workers:seen`. A worker that misses its deadline (it died
-- without a word) is dropped here, by any other worker's heartbeat, or by workers.lua.
--
-- KEYS[1] queue prefix   ARGV[1] token   ARGV[2] expiry ms (0: the worker leaves)
-- ARGV[3] record: a JSON object, "{...}"
-- Returns the number of dead workers dropped.
local k = keys_of(KEYS[1])
local token = ARGV[1]
local expiry = tonumber(ARGV[2])
if expiry == 0 then
  redis.call('ZREM', k['workers:seen'], token)
  redis.call('HDEL', k.workers, token)
  return 0
end
local now = now_ms()
redis.call('ZADD', k['workers:seen'], now + expiry, token)
redis.call('HSET', k.workers, token, '{"last_seen_ms":' .. now .. ',' .. string.sub(ARGV[3], 2))
return prune_workers(k, now, 100)
