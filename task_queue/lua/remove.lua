-- Removes a job that is not running, from whatever state it is in, with its result.
--
-- KEYS[1] queue prefix   ARGV[1] id
-- Returns 'removed' | 'unknown' | 'running'
local k = keys_of(KEYS[1])
local id = ARGV[1]
local rec = redis.call('HGET', k.jobs, id)
local had_result = redis.call('HDEL', k.results, id) + redis.call('ZREM', k.done, id)
if not rec then
  if had_result > 0 then return 'removed' end
  return 'unknown'
end
local removed = redis.call('ZREM', k.prio, id) + redis.call('ZREM', k.delayed, id) +
  redis.call('ZREM', k.failed, id)
if removed == 0 then removed = redis.call('LREM', k.wait, 1, id) end
if removed == 0 then return 'running' end
local h = header(rec) or {unique = ''}
forget_unique(k, h.unique, id)
redis.call('HDEL', k.jobs, id)
redis.call('HDEL', k.attempts, id)
redis.call('HDEL', k.errors, id)
redis.call('HDEL', k.progress, id)
journal(k, 'removed', {id})
return 'removed'
