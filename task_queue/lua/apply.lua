-- Applies notices of finished children (lib.lua notify_parent) to their parents in this queue,
-- the parents' slot: each child's outcome is kept once in `children` and counted; a parent
-- then moves on: failed by a child that failed for good (policy 'f'), or, once no child is
-- pending, released to the ready states ('released'), or completed at once if it is a group's
-- collector, its result its members' outcomes. Idempotent: a notice applied again (its worker
-- died before deleting it from the outbox) finds the outcome kept and changes nothing; one for
-- a parent gone (completed, removed) changes nothing either.
--
-- KEYS[1] parent queue prefix
-- ARGV: per notice: parent id, index, policy, child "<queue> <id>", outcome ('c', 'f' or 'x'
-- then the text; 'r' removed before it finished)
-- Returns the notices this queue's outbox got (its parents that ended, to their own parents).
local k = keys_of(KEYS[1])
local me = queue_of(KEYS[1])
local out = {}
local released, failed, completed, notify = {}, {}, {}, {}
local now = nil

-- A parent whose children are all done, or one failed: `rec` its record, `why` nil to release.
local function move_on(pid, rec, why)
  now = now or now_ms()
  redis.call('ZREM', k.waiting_children, pid)
  local h = header(rec) or {priority = 0, unique = '', ttl = 0, flow = ''}
  local f = parse_flow(h.flow) or {kind = '-', n = 0, policy = '-'}
  if why then
    to_failed(k, pid, why, h.unique, now, 'f')
    failed[#failed + 1] = pid
    notify[#notify + 1] = pid
    if f.policy ~= '-' then notify_parent(k, f, me .. ' ' .. pid, 'f' .. why, out) end
  elseif f.kind == 'g' then
    local fields = {}
    for i = 1, f.n do fields[#fields + 1] = pid .. ':' .. i end
    local held = redis.call('HMGET', k.children, unpack(fields))
    local parts = {}
    for i = 1, f.n do
      local v = held[i] or ''
      parts[#parts + 1] = #v .. ':' .. v
    end
    local text = table.concat(parts)
    forget_children(k, pid, f.n)
    if h.ttl > 0 then
      keep_result(k, pid, text, h.ttl, now)
      -- Results were kept: sweep expired ones, a hundred at a time (as complete.lua does).
      local expired = redis.call('ZRANGEBYSCORE', k.done, '-inf', now, 'LIMIT', 0, 100)
      if #expired > 0 then
        variadic('ZREM', k.done, expired)
        variadic('HDEL', k.results, expired)
      end
    end
    redis.call('HDEL', k.jobs, pid)
    redis.call('HINCRBY', k.stats, 'completed', 1)
    completed[#completed + 1] = pid
    notify[#notify + 1] = pid
    if f.policy ~= '-' then notify_parent(k, f, me .. ' ' .. pid, 'c' .. text, out) end
  else
    make_ready(k, pid, h.priority, false, h.group)
    released[#released + 1] = pid
  end
end

for b = 1, #ARGV, 5 do
  local pid, index, policy, child, outcome = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3],
    ARGV[b + 4]
  local field = pid .. ':' .. index
  -- Pending: the entry is the child's name alone; once kept, its outcome follows.
  if redis.call('HGET', k.children, field) == child then
    local kind = string.sub(outcome, 1, 1)
    local kept = outcome
    if kind == 'r' then kept = 'xremoved before it finished' end
    redis.call('HSET', k.children, field, child .. ' ' .. kept)
    local left = redis.call('HINCRBY', k.children, pid .. ':p', -1)
    if redis.call('ZSCORE', k.waiting_children, pid) then
      local rec = redis.call('HGET', k.jobs, pid)
      if not rec then
        redis.call('ZREM', k.waiting_children, pid)
      elseif (kind == 'f' or kind == 'x') and policy == 'f' then
        move_on(pid, rec, 'child ' .. child .. ' failed: ' .. string.sub(outcome, 2))
      elseif left <= 0 then
        move_on(pid, rec, nil)
      end
    end
  end
end
if #released > 0 then wake(k) end
if #notify > 0 then publish(k, 'done ' .. table.concat(notify, ' ')) end
journal(k, 'released', released)
journal(k, 'completed', completed)
journal(k, 'failed', failed)
return out
