-- Removes a job that is not running, from whatever state it is in, with its result. A child
-- of a flow removed before it finished tells its parent, which stops waiting for it; a parent
-- hands back its pending children, which the caller removes in their queues.
--
-- KEYS[1] queue prefix   ARGV[1] id
-- Returns {answer, notices (lib.lua notify_parent, flat), pending children "<queue> <id>"},
-- answer 'removed' | 'unknown' | 'running'.
local k = keys_of(KEYS[1])
local id = ARGV[1]
local rec = redis.call('HGET', k.jobs, id)
local had_result = redis.call('HDEL', k.results, id) + redis.call('ZREM', k.done, id)
if not rec then
  if had_result > 0 then return {'removed', {}, {}} end
  return {'unknown', {}, {}}
end
local h = header(rec) or {unique = '', flow = '', group = ''}
local failed = redis.call('ZREM', k.failed, id)
local removed = failed + redis.call('ZREM', k.prio, id) + redis.call('ZREM', k.delayed, id) +
  redis.call('ZREM', k.waiting_children, id)
if removed == 0 then removed = redis.call('LREM', k.wait, 1, id) end
if removed == 0 and h.group ~= '' then removed = redis.call('LREM', k['g:' .. h.group], 1, id) end
if removed == 0 then return {'running', {}, {}} end
local notices, children = {}, {}
local f = parse_flow(h.flow)
if f then
  if f.n > 0 then
    pending_children(k, id, f.n, children)
    forget_children(k, id, f.n)
  end
  -- A failed child told its parent when it failed.
  if f.policy ~= '-' and failed == 0 then
    notify_parent(k, f, queue_of(KEYS[1]) .. ' ' .. id, 'r', notices)
  end
end
forget_unique(k, h.unique, id)
redis.call('HDEL', k.jobs, id)
redis.call('HDEL', k.attempts, id)
redis.call('HDEL', k.errors, id)
redis.call('HDEL', k.progress, id)
journal(k, 'removed', {id})
return {'removed', notices, children}
