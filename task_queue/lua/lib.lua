-- Shared by every queue script (prepended to each one, so each stays one atomic call).
-- Keys of one queue share the hash tag "{<queue>}": on a cluster they live on one node.
-- Job ids are decimal strings; an active job is the member "<id>@<worker token>" of `active`,
-- scored by its lease deadline, so a worker renews and acks only its own leases.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Redis' Lua unpack is limited by the C stack: variadic commands go in chunks.
local function variadic(cmd, key, items)
  local n = #items
  local i = 1
  while i <= n do
    local j = math.min(n, i + 3999)
    redis.call(cmd, key, unpack(items, i, j))
    i = j + 1
  end
end

-- The record's header: "1|max_attempts|backoff|base_ms|max_ms|timeout_ms|ttl_ms|priority|
-- enqueued_ms|delay_ms|unique_len|" then the unique key and the payload; a job of a flow has
-- "2|" and one more length, "flow_len|", and its flow text after the unique key (parse_flow);
-- a grouped job "3|" and two more, "flow_len|group_len|", its group after the flow text.
-- Only rare paths (recovery, promotion, cancel, flows) read it; claim and ack never parse a record.
local function header(rec)
  local f = {}
  local pos = 1
  local v = string.sub(rec, 1, 2)
  local fields = v == '3|' and 13 or v == '2|' and 12 or 11
  for _ = 1, fields do
    local bar = string.find(rec, '|', pos, true)
    if not bar then return nil end
    f[#f + 1] = string.sub(rec, pos, bar - 1)
    pos = bar + 1
  end
  local ulen = tonumber(f[11]) or 0
  local flen = tonumber(f[12]) or 0
  local glen = tonumber(f[13]) or 0
  return {
    max_attempts = tonumber(f[2]) or 1,
    ttl = tonumber(f[7]) or 0,
    priority = tonumber(f[8]) or 0,
    unique = string.sub(rec, pos, pos + ulen - 1),
    flow = string.sub(rec, pos + ulen, pos + ulen + flen - 1),
    group = string.sub(rec, pos + ulen + flen, pos + ulen + flen + glen - 1),
  }
end

-- Priority p (higher runs sooner) and id give one score: lower is sooner, FIFO within p.
local function prio_score(p, id)
  return -p * 1099511627776 + tonumber(id)
end

local function wake(k)
  redis.call('ZADD', k.marker, 0, 'm')
end

-- Fair groups (job.hpp job_options::group; README "Fair groups"). A group's ready jobs wait in
-- its own list "g:<group>"; a group with ready jobs is in exactly one of: the ring `groups`
-- (scored by its turn: claim serves the lowest, then gives it a new, last turn), `groups:maxed`
-- (its running jobs reached its concurrency) or `groups:limited` (its rate limit, scored by
-- when it lifts). `groups:active` counts each group's running jobs; `grate:<group>` its claims
-- in the current rate window. Limits: `groups:limits` per group, else the meta defaults.
local function group_ready(k, g)
  if redis.call('ZSCORE', k.groups, g) or redis.call('SISMEMBER', k['groups:maxed'], g) == 1 or
      redis.call('ZSCORE', k['groups:limited'], g) then
    return
  end
  redis.call('ZADD', k.groups, redis.call('HINCRBY', k.meta, 'group_turn', 1), g)
end

-- The limits every group without its own has: {concurrency, rate max, rate window ms} (0: none).
local function group_defaults(k)
  local d = redis.call('HMGET', k.meta, 'group_concurrency', 'group_rate_max', 'group_rate_window')
  return {tonumber(d[1]) or 0, tonumber(d[2]) or 0, tonumber(d[3]) or 1000}
end

-- A group's limits: its own, else `defaults` (read when not given).
local function group_limits(k, g, defaults)
  local own = redis.call('HGET', k['groups:limits'], g)
  if own then
    local c, m, w = string.match(own, '^(%d+) (%d+) (%d+)$')
    if c then return {tonumber(c), tonumber(m), tonumber(w)} end
  end
  return defaults or group_defaults(k)
end

-- `n` (1 if nil) jobs of group g stopped running (ended, failed, went back): a group held at
-- its concurrency goes back into the ring once below it.
local function group_left(k, g, n)
  local left = redis.call('HINCRBY', k['groups:active'], g, -(n or 1))
  if left <= 0 then redis.call('HDEL', k['groups:active'], g) end
  if redis.call('SISMEMBER', k['groups:maxed'], g) == 1 then
    local c = group_limits(k, g)[1]
    if c == 0 or left < c then
      redis.call('SREM', k['groups:maxed'], g)
      if redis.call('LLEN', k['g:' .. g]) > 0 then
        group_ready(k, g)
        wake(k)
      end
    end
  end
end

-- Back to the ready states: priority 0 in the list, others in the sorted set, a grouped job in
-- its group's list. `front`: a job that was running goes to the head of the line (it was next
-- before).
local function make_ready(k, id, priority, front, group)
  if group and group ~= '' then
    redis.call(front and 'RPUSH' or 'LPUSH', k['g:' .. group], id)
    group_ready(k, group)
  elseif priority ~= 0 then
    redis.call('ZADD', k.prio, prio_score(priority, id), id)
  elseif front then
    redis.call('RPUSH', k.wait, id)
  else
    redis.call('LPUSH', k.wait, id)
  end
end

local function forget_unique(k, uk, id)
  if uk ~= '' and redis.call('HGET', k.unique, uk) == id then redis.call('HDEL', k.unique, uk) end
end

-- A completed job's result ("c" + its text), kept ttl ms: `done` indexes the expiry.
local function keep_result(k, id, text, ttl, now)
  redis.call('HSET', k.results, id, 'c' .. text)
  redis.call('ZADD', k.done, now + ttl, id)
end

-- Ends a job for good as failed (or cancelled): the record stays for `retry`, and so does its
-- result (no expiry: it goes with the job, by remove or retry), outside `done`, which indexes
-- completed jobs only.
local function to_failed(k, id, text, uk, now, status)
  redis.call('ZADD', k.failed, now, id)
  redis.call('HSET', k.errors, id, text)
  forget_unique(k, uk, id)
  redis.call('HSET', k.results, id, status .. text)
  redis.call('HINCRBY', k.stats, status == 'x' and 'cancelled' or 'failed', 1)
end

-- Keys of the queue from its prefix "akvq:{name}:" (KEYS[1] of every script): k.wait is
-- "akvq:{name}:wait". Built on first use, so a script pays only for the keys it touches.
local function keys_of(p)
  return setmetatable({}, {__index = function(t, name)
    local key = p .. name
    rawset(t, name, key)
    return key
  end})
end

-- Promotes up to `limit` delayed jobs whose time has come; returns how many.
local function promote_due(k, now, limit)
  local due = redis.call('ZRANGEBYSCORE', k.delayed, '-inf', now, 'LIMIT', 0, limit)
  if #due == 0 then return 0 end
  variadic('ZREM', k.delayed, due)
  for _, id in ipairs(due) do
    local rec = redis.call('HGET', k.jobs, id)
    if rec then
      local h = header(rec)
      make_ready(k, id, h and h.priority or 0, false, h and h.group)
    end
  end
  wake(k)
  return #due
end

local function next_due(k)
  local first = redis.call('ZRANGE', k.delayed, 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  return tonumber(first[2])
end

local function publish(k, text)
  redis.call('SPUBLISH', k.events, text)
end

-- The durable job events (akv/queue/event_log.hpp): one stream entry per state move of a batch,
-- "event" then "ids" (space-separated) and, for some, "text"; trimmed to about journal_max.
local journal_max = '10000' -- text: a number argument is formatted at every call
local function journal(k, event, ids, text)
  if #ids == 0 then return end
  local joined = table.concat(ids, ' ')
  if text then
    redis.call('XADD', k.journal, 'MAXLEN', '~', journal_max, '*', 'event', event, 'ids', joined,
      'text', text)
  else
    redis.call('XADD', k.journal, 'MAXLEN', '~', journal_max, '*', 'event', event, 'ids', joined)
  end
end

local function strip_token(member)
  local at = string.find(member, '@', 1, true)
  if not at then return member end
  return string.sub(member, 1, at - 1)
end

-- The queue's name from its prefix "akvq:{name}:".
local function queue_of(prefix)
  return string.sub(prefix, 7, #prefix - 2)
end

-- Flows (README "Workflows: the hand-off across slots"). A job's flow text (job.hpp
-- flow_text): "<kind><n>|<policy>[<parent queue> <parent id> <index>]", kind '-', 'c' (n
-- children) or 'g' (a group's collector), policy '-' (no parent), 'f' or 'i'. nil for ''.
local function parse_flow(t)
  if t == nil or t == '' then return nil end
  local bar = string.find(t, '|', 1, true)
  if not bar then return nil end
  local f = {kind = string.sub(t, 1, 1), n = tonumber(string.sub(t, 2, bar - 1)) or 0,
    policy = string.sub(t, bar + 1, bar + 1)}
  if f.policy ~= '-' then
    local rest = string.sub(t, bar + 2)
    local s1 = string.find(rest, ' ', 1, true)
    local s2 = s1 and string.find(rest, ' ', s1 + 1, true)
    if not s2 then f.policy = '-' return f end
    f.pq = string.sub(rest, 1, s1 - 1)
    f.pid = string.sub(rest, s1 + 1, s2 - 1)
    f.index = string.sub(rest, s2 + 1)
  end
  return f
end

-- The decimal text of a small positive integer (a child's index, a count): a number
-- concatenated in Lua goes through snprintf("%.14g"), three times the cost of string.char.
local function decimal(i)
  if i < 10 then return string.char(48 + i) end
  return string.format('%d', i)
end

-- The fields of a parent's children in `children`: "<id>:1" to "<id>:<n>", after `first`.
local function child_fields(id, n, first)
  local fields = first or {}
  for i = 1, n do fields[#fields + 1] = id .. ':' .. decimal(i) end
  return fields
end

-- A job with a parent finished for good (or was removed before it did): a notice to the
-- parent goes to this queue's outbox, in this slot and in the same atomic move. Whoever
-- flushed the move applies it in the parent's slot (apply.lua), then deletes it; one left
-- behind by a process that died is applied by this queue's workers later (outbox.lua).
-- A notice is one text, "<policy><parent queue> <parent id> <index> <child queue> <child id>
-- <outcome>" (queue names hold no space; the outcome, last, may hold anything), the value of
-- a field "n" of an outbox entry. Appends {stream id, notice} to `out`.
local function notify_parent(k, f, child, outcome, out)
  local notice = f.policy .. f.pq .. ' ' .. f.pid .. ' ' .. f.index .. ' ' .. child .. ' '
    .. outcome
  local n = #out
  out[n + 1], out[n + 2] = redis.call('XADD', k.outbox, '*', 'n', notice), notice
end

-- notify_parent's notice for a job of queue `q` completed with `result` (complete.lua), built
-- in one concatenation straight from its flow text (no parse_flow): the text after the bar is
-- the notice's head, "<policy><parent queue> <parent id> <index>". nil without a parent.
local function completed_notice(flow, q, id, result)
  local bar = string.find(flow, '|', 1, true)
  if not bar or string.byte(flow, bar + 1) == 45 then return nil end -- '-': no parent
  return string.sub(flow, bar + 1) .. ' ' .. q .. ' ' .. id .. ' c' .. result
end

-- Writes the notices of one ack as ONE outbox entry (fields "n", a thousand to an entry:
-- unpack's bound), appending them to `out` as notify_parent does. The hand-off deletes it at
-- once: XDEL walks the stream node up to each id it deletes, and with an entry per child,
-- deleting a flow's 10 notices cost 40% of what its children's claims and acks did.
local function write_notices(k, notices, out)
  for first = 1, #notices, 1000 do
    local last = math.min(#notices, first + 999)
    local fields = {}
    for i = first, last do fields[#fields + 1], fields[#fields + 2] = 'n', notices[i] end
    local nid = redis.call('XADD', k.outbox, '*', unpack(fields))
    for i = first, last do
      local n = #out
      out[n + 1], out[n + 2] = nid, notices[i]
    end
  end
end

-- A parent that completed or was removed: its children's entries go.
local function forget_children(k, id, n)
  variadic('HDEL', k.children, child_fields(id, n, {id .. ':p'}))
end

-- The pending children of a parent leaving for good: "<queue> <id>" each (the caller cascades).
local function pending_children(k, id, n, out)
  if n == 0 then return end
  local held = redis.call('HMGET', k.children, unpack(child_fields(id, n)))
  for i = 1, n do
    local v = held[i]
    if v then
      local s1 = string.find(v, ' ', 1, true)
      if s1 and not string.find(v, ' ', s1 + 1, true) then out[#out + 1] = v end
    end
  end
end

-- Drops up to `limit` entries of the registry of live workers whose heartbeat deadline has
-- passed (their worker died, or lost Redis, without a word); returns how many.
local function prune_workers(k, now, limit)
  local dead = redis.call('ZRANGEBYSCORE', k['workers:seen'], '-inf', now, 'LIMIT', 0, limit)
  if #dead > 0 then
    variadic('ZREM', k['workers:seen'], dead)
    variadic('HDEL', k.workers, dead)
  end
  return #dead
end
