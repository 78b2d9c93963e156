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
-- then the text; 'r' removed before it finished); those for one parent best in a row
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
    local held = redis.call('HMGET', k.children, unpack(child_fields(pid, f.n)))
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

-- The notices for one parent come in a row (the hand-off sorts them so; a flow's children
-- mostly end in the same acks): a run is applied with one HMGET, one HSET and one HINCRBY,
-- not three calls per child (a call from Lua costs about what a small command does).
local b = 1
while b <= #ARGV do
  local pid = ARGV[b]
  local last = b
  while last + 5 <= #ARGV and ARGV[last + 5] == pid and last - b < 5 * 999 do last = last + 5 end
  local fields = {}
  for x = b, last, 5 do fields[#fields + 1] = pid .. ':' .. ARGV[x + 1] end
  local held = redis.call('HMGET', k.children, unpack(fields))
  local kept, seen, counted, failure = {}, {}, 0, nil
  for x = b, last, 5 do
    local i = (x - b) / 5 + 1
    local field, policy, child, outcome = fields[i], ARGV[x + 2], ARGV[x + 3], ARGV[x + 4]
    -- Pending: the entry is the child's name alone; once kept, its outcome follows. A notice
    -- twice in a run counts once.
    if held[i] == child and not seen[field] then
      seen[field] = true
      counted = counted + 1
      local kind = string.sub(outcome, 1, 1)
      local text = outcome
      if kind == 'r' then text = 'xremoved before it finished' end
      kept[#kept + 1], kept[#kept + 2] = field, child .. ' ' .. text
      if not failure and (kind == 'f' or kind == 'x') and policy == 'f' then
        failure = 'child ' .. child .. ' failed: ' .. string.sub(outcome, 2)
      end
    end
  end
  if counted > 0 then
    redis.call('HSET', k.children, unpack(kept))
    local left = redis.call('HINCRBY', k.children, pid .. ':p', '-' .. decimal(counted))
    -- Only the last child, or one that fails the parent, moves it on.
    if (failure or left <= 0) and redis.call('ZSCORE', k.waiting_children, pid) then
      local rec = redis.call('HGET', k.jobs, pid)
      if not rec then
        redis.call('ZREM', k.waiting_children, pid)
      else
        move_on(pid, rec, failure)
      end
    end
  end
  b = last + 5
end
if #released > 0 then wake(k) end
if #notify > 0 then publish(k, 'done ' .. table.concat(notify, ' ')) end
journal(k, 'released', released)
journal(k, 'completed', completed)
journal(k, 'failed', failed)
return out
