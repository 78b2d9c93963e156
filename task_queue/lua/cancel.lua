-- Cancels a job: a waiting, delayed or waiting-children one is removed at once (its result says
-- cancelled); a running one is flagged and its worker told (event "cancel <id>", and its next
-- lease renewal answers the flag), so the handler is stopped where it is. A job of a flow
-- cancelled here tells its parent (a notice in the outbox), and a parent hands back its
-- pending children, which the caller cancels in their queues.
--
-- KEYS[1] queue prefix   ARGV[1] id   ARGV[2] reason
-- Returns {answer, notices (lib.lua notify_parent, flat), pending children "<queue> <id>"},
-- answer 'unknown' | 'cancelled' | 'finished' (failed already) | 'running' (flagged).
local k = keys_of(KEYS[1])
local id = ARGV[1]
local rec = redis.call('HGET', k.jobs, id)
if not rec then return {'unknown', {}, {}} end
if redis.call('ZSCORE', k.failed, id) then return {'finished', {}, {}} end
local h = header(rec) or {unique = '', flow = '', group = ''}
local removed = redis.call('ZREM', k.prio, id) + redis.call('ZREM', k.delayed, id) +
  redis.call('ZREM', k.waiting_children, id)
if removed == 0 then removed = redis.call('LREM', k.wait, 1, id) end
if removed == 0 and h.group ~= '' then removed = redis.call('LREM', k['g:' .. h.group], 1, id) end
if removed > 0 then
  local now = now_ms()
  local notices, children = {}, {}
  to_failed(k, id, 'cancelled: ' .. ARGV[2], h.unique, now, 'x')
  local f = parse_flow(h.flow)
  if f then
    pending_children(k, id, f.n, children)
    if f.policy ~= '-' then
      notify_parent(k, f, queue_of(KEYS[1]) .. ' ' .. id, 'xcancelled: ' .. ARGV[2], notices)
    end
  end
  publish(k, 'done ' .. id)
  journal(k, 'cancelled', {id}, ARGV[2])
  return {'cancelled', notices, children}
end
redis.call('SADD', k.cancel, id)
redis.call('HSET', k.errors, id, 'cancelled: ' .. ARGV[2])
publish(k, 'cancel ' .. id)
return {'running', {}, {}}
