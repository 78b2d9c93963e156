-- Runs a failed (or cancelled) job again, with its attempts counted from zero.
--
-- KEYS[1] queue prefix   ARGV[1] id
-- Returns 'requeued' | 'unknown' | 'not_failed'
local k = keys_of(KEYS[1])
local id = ARGV[1]
local rec = redis.call('HGET', k.jobs, id)
if not rec then return 'unknown' end
if redis.call('ZREM', k.failed, id) == 0 then return 'not_failed' end
redis.call('HDEL', k.attempts, id)
redis.call('HDEL', k.errors, id)
redis.call('HDEL', k.progress, id)
redis.call('HDEL', k.results, id)
redis.call('ZREM', k.done, id)
local h = header(rec) or {priority = 0, unique = ''}
if h.unique ~= '' then redis.call('HSET', k.unique, h.unique, id) end
make_ready(k, id, h.priority, false)
wake(k)
journal(k, 'retried', {id}, 'by hand')
return 'requeued'
