-- The live workers of a queue: drops those past their heartbeat deadline, returns the rest.
--
-- KEYS[1] queue prefix
-- Returns {token, record, ...} (records as heartbeat.lua stored them).
local k = keys_of(KEYS[1])
prune_workers(k, now_ms(), 10000)
return redis.call('HGETALL', k.workers)
