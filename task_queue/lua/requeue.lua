-- Runs a failed (or cancelled) job again, with its attempts counted from zero. A parent of a
-- flow with children still pending waits for them again instead.
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
journal(k, 'retried', {id}, 'by hand')
local f = parse_flow(h.flow)
if f and f.n > 0 and tonumber(redis.call('HGET', k.children, id .. ':p') or '0') > 0 then
  redis.call('ZADD', k.waiting_children, now_ms(), id)
  journal(k, 'waiting-children', {id})
  return 'requeued'
end
make_ready(k, id, h.priority, false, h.group)
wake(k)
return 'requeued'
