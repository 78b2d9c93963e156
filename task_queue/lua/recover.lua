-- Jobs whose lease expired (their worker died or stalled): each counts a failed attempt and
-- goes back to the head of the line, or to the failed set once out of attempts.
--
-- KEYS[1] queue prefix   ARGV[1] limit
-- Returns {recovered, failed}.
local k = keys_of(KEYS[1])
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', k.active, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local back, failed = 0, 0
local notify = {}
local stalled, ended, cancelled = {}, {}, {}
for _, member in ipairs(expired) do
  redis.call('ZREM', k.active, member)
  local id = strip_token(member)
  local rec = redis.call('HGET', k.jobs, id)
  if rec then
    local h = header(rec) or {max_attempts = 1, priority = 0, unique = ''}
    local attempts = redis.call('HINCRBY', k.attempts, id, 1)
    if redis.call('SREM', k.cancel, id) == 1 then
      to_failed(k, id, redis.call('HGET', k.errors, id) or 'cancelled', h.unique, now, 'x')
      failed = failed + 1
      notify[#notify + 1] = id
      cancelled[#cancelled + 1] = id
    elseif attempts >= h.max_attempts then
      local text = 'lease expired ' .. attempts .. ' times: the worker died or stalled'
      redis.call('HSET', k.errors, id, text)
      to_failed(k, id, text, h.unique, now, 'f')
      failed = failed + 1
      notify[#notify + 1] = id
      stalled[#stalled + 1] = id
      ended[#ended + 1] = id
    else
      stalled[#stalled + 1] = id
      make_ready(k, id, h.priority, true)
      back = back + 1
    end
  end
end
if back > 0 then
  redis.call('HINCRBY', k.stats, 'recovered', back)
  wake(k)
end
if #notify > 0 then publish(k, 'done ' .. table.concat(notify, ' ')) end
journal(k, 'stalled', stalled)
journal(k, 'failed', ended)
journal(k, 'cancelled', cancelled)
return {back, failed}
