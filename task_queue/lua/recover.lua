-- Jobs whose lease expired (their worker died or stalled): each counts a failed attempt and
-- goes back to the head of the line, or to the failed set once out of attempts.
--
-- KEYS[1] queue prefix   ARGV[1] limit
-- Returns {recovered, failed, notices to parents (lib.lua notify_parent, flat)}.
local k = keys_of(KEYS[1])
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', k.active, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local back, failed = 0, 0
local notify = {}
local stalled, ended, cancelled, notices = {}, {}, {}, {}
for _, member in ipairs(expired) do
  redis.call('ZREM', k.active, member)
  local id = strip_token(member)
  local rec = redis.call('HGET', k.jobs, id)
  if rec then
    local h = header(rec) or {max_attempts = 1, priority = 0, unique = ''}
    if h.group and h.group ~= '' then group_left(k, h.group) end
    local f = parse_flow(h.flow)
    local attempts = redis.call('HINCRBY', k.attempts, id, 1)
    if redis.call('SREM', k.cancel, id) == 1 then
      local text = redis.call('HGET', k.errors, id) or 'cancelled'
      to_failed(k, id, text, h.unique, now, 'x')
      if f and f.policy ~= '-' then
        notify_parent(k, f, queue_of(KEYS[1]) .. ' ' .. id, 'x' .. text, notices)
      end
      failed = failed + 1
      notify[#notify + 1] = id
      cancelled[#cancelled + 1] = id
    elseif attempts >= h.max_attempts then
      local text = 'lease expired ' .. attempts .. ' times: the worker died or stalled'
      redis.call('HSET', k.errors, id, text)
      to_failed(k, id, text, h.unique, now, 'f')
      if f and f.policy ~= '-' then
        notify_parent(k, f, queue_of(KEYS[1]) .. ' ' .. id, 'f' .. text, notices)
      end
      failed = failed + 1
      notify[#notify + 1] = id
      stalled[#stalled + 1] = id
      ended[#ended + 1] = id
    else
      stalled[#stalled + 1] = id
      make_ready(k, id, h.priority, true, h.group)
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
return {back, failed, notices}
