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
-- enqueued_ms|delay_ms|unique_len|" then the unique key and the payload. Only rare paths
-- (recovery, promotion, cancel) read it; claim and ack never parse a record.
local function header(rec)
  local f = {}
  local pos = 1
  for _ = 1, 11 do
    local bar = string.find(rec, '|', pos, true)
    if not bar then return nil end
    f[#f + 1] = string.sub(rec, pos, bar - 1)
    pos = bar + 1
  end
  local ulen = tonumber(f[11]) or 0
  return {
    max_attempts = tonumber(f[2]) or 1,
    priority = tonumber(f[8]) or 0,
    unique = string.sub(rec, pos, pos + ulen - 1),
  }
end

-- Priority p (higher runs sooner) and id give one score: lower is sooner, FIFO within p.
local function prio_score(p, id)
  return -p * 1099511627776 + tonumber(id)
end

-- Back to the ready states: priority 0 in the list, others in the sorted set. `front`: a
-- job that was running goes to the head of the line (it was next before).
local function make_ready(k, id, priority, front)
  if priority ~= 0 then
    redis.call('ZADD', k.prio, prio_score(priority, id), id)
  elseif front then
    redis.call('RPUSH', k.wait, id)
  else
    redis.call('LPUSH', k.wait, id)
  end
end

local function wake(k)
  redis.call('ZADD', k.marker, 0, 'm')
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
      make_ready(k, id, h and h.priority or 0, false)
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
local journal_max = 10000
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
