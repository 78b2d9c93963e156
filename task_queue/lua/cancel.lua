-- Cancels a job: a waiting or delayed one is removed at once (its result says cancelled);
-- a running one is flagged and its worker told (event "cancel <id>", and its next lease
-- renewal answers the flag), so the handler is stopped where it is.
--
-- KEYS[1] queue prefix   ARGV[1] id   ARGV[2] reason
-- Returns 'unknown' | 'cancelled' | 'finished' (failed already) | 'running' (flagged)
local k = keys_of(KEYS[1])
local id = ARGV[1]
local rec = redis.call('HGET', k.jobs, id)
if not rec then return 'unknown' end
if redis.call('ZSCORE', k.failed, id) then return 'finished' end
local h = header(rec) or {unique = ''}
local removed = redis.call('ZREM', k.prio, id) + redis.call('ZREM', k.delayed, id)
if removed == 0 then removed = redis.call('LREM', k.wait, 1, id) end
if removed > 0 then
  local now = now_ms()
  to_failed(k, id, 'cancelled: ' .. ARGV[2], h.unique, now, 'x')
  publish(k, 'done ' .. id)
  journal(k, 'cancelled', {id}, ARGV[2])
  return 'cancelled'
end
redis.call('SADD', k.cancel, id)
redis.call('HSET', k.errors, id, 'cancelled: ' .. ARGV[2])
publish(k, 'cancel ' .. id)
return 'running'
