-- Claims up to n ready jobs for one worker: highest priority first, then FIFO. Each claimed
-- job gets a lease (member "<id>@<token>" of `active`, scored by its deadline). Delayed jobs
-- whose time has come are promoted first. Honours pause and the queue's rate limit. Grouped
-- jobs (lib.lua group_ready) come after ungrouped ones, one group's job after another's.
--
-- KEYS[1] queue prefix
-- ARGV[1] n   ARGV[2] lease ms   ARGV[3] worker token
-- Returns {now, wake_at (ms; -1 none), why ('' | 'paused' | 'limited'), id, record, attempts, ...}
local k = keys_of(KEYS[1])
local now = now_ms()
local n = math.min(tonumber(ARGV[1]), 1000)
-- As text once: a number argument is formatted by Redis for every lease.
local deadline = string.format('%d', now + tonumber(ARGV[2]))
local token = ARGV[3]
-- One look at the earliest delayed job; the promotion scan runs only when one is due.
local due = next_due(k)
if due >= 0 and due <= now then
  promote_due(k, now, 1000)
  due = next_due(k)
end
local meta = redis.call('HMGET', k.meta, 'paused', 'rate_max', 'rate_window')
if meta[1] == '1' then return {now, -1, 'paused'} end
local rate_max = tonumber(meta[2])
if rate_max and rate_max > 0 then
  local used = tonumber(redis.call('GET', k.rate) or '0')
  if used >= rate_max then
    local ttl = redis.call('PTTL', k.rate)
    if ttl < 0 then ttl = 0 end
    return {now, now + ttl, 'limited'}
  end
  n = math.min(n, rate_max - used)
end
if n <= 0 then return {now, due, ''} end

local ids = redis.call('ZRANGEBYSCORE', k.prio, '-inf', '(0', 'LIMIT', 0, n)
if #ids > 0 then variadic('ZREM', k.prio, ids) end
if #ids < n then
  local more = redis.call('RPOP', k.wait, n - #ids)
  if more then for _, id in ipairs(more) do ids[#ids + 1] = id end end
end
if #ids < n then
  local low = redis.call('ZPOPMIN', k.prio, n - #ids)
  for i = 1, #low, 2 do ids[#ids + 1] = low[i] end
end
-- Fair groups: groups whose rate window ended go back into the ring; then round robin: the
-- group whose turn is lowest gives its share of the claim, then gets the last turn. A group
-- alone in the ring gives as many as its limits allow. The turn counter, the defaults and the ring's size are
-- read once per claim: a turn costs ZPOPMIN, RPOP, HINCRBY and ZADD.
local grouped = #ids < n and redis.call('EXISTS', k.groups, k['groups:limited']) > 0
if grouped then
  local lifted = redis.call('ZRANGEBYSCORE', k['groups:limited'], '-inf', now, 'LIMIT', 0, 1000)
  for _, g in ipairs(lifted) do
    redis.call('ZREM', k['groups:limited'], g)
    if redis.call('LLEN', k['g:' .. g]) > 0 then group_ready(k, g) end
  end
  local defaults = group_defaults(k)
  local own_limits = redis.call('EXISTS', k['groups:limits']) == 1
  local turn0 = tonumber(redis.call('HGET', k.meta, 'group_turn') or '0')
  local turn = turn0
  local ring = redis.call('ZCARD', k.groups)
  -- A turn gives a fair share of this claim: one job each when the claim is small, several
  -- when it is large (fewer turns, the same proportions).
  local share = math.max(1, math.floor((n - #ids) / math.max(ring, 1)))
  local limits = {}
  local guard = 0
  while #ids < n and ring > 0 and guard < n + 1000 do
    guard = guard + 1
    local top = redis.call('ZPOPMIN', k.groups)
    if #top == 0 then break end
    ring = ring - 1
    local g = top[1]
    local lim = limits[g]
    if not lim then
      lim = own_limits and group_limits(k, g, defaults) or defaults
      limits[g] = lim
    end
    local running = lim[1] > 0 and tonumber(redis.call('HGET', k['groups:active'], g) or '0') or 0
    local rkey = k['grate:' .. g]
    local used = lim[2] > 0 and tonumber(redis.call('GET', rkey) or '0') or 0
    local room = n - #ids
    if lim[1] > 0 then room = math.min(room, lim[1] - running) end
    if lim[2] > 0 then room = math.min(room, lim[2] - used) end
    if room > 0 and ring > 0 then room = math.min(room, share) end
    local got = room > 0 and redis.call('RPOP', k['g:' .. g], room) or false
    if got then
      for _, id in ipairs(got) do ids[#ids + 1] = id end
      running = redis.call('HINCRBY', k['groups:active'], g, #got)
      if lim[2] > 0 then
        used = redis.call('INCRBY', rkey, #got)
        if used == #got then redis.call('PEXPIRE', rkey, lim[3]) end
      end
    end
    -- Fewer than asked: its list ran dry, it leaves the ring. Otherwise it goes back, or aside
    -- at a limit (a group whose list ran dry exactly is dropped by its next turn's RPOP).
    if room <= 0 or (got and #got == room) then
      if (lim[1] > 0 and running >= lim[1]) or (lim[2] > 0 and used >= lim[2]) then
        if redis.call('LLEN', k['g:' .. g]) > 0 then
          if lim[1] > 0 and running >= lim[1] then
            redis.call('SADD', k['groups:maxed'], g)
          else
            local ttl = redis.call('PTTL', rkey)
            redis.call('ZADD', k['groups:limited'], now + math.max(ttl, 0), g)
          end
        end
      else
        turn = turn + 1
        redis.call('ZADD', k.groups, turn, g)
        ring = ring + 1
      end
    end
  end
  if turn ~= turn0 then redis.call('HSET', k.meta, 'group_turn', turn) end
  local lifts = redis.call('ZRANGE', k['groups:limited'], 0, 0, 'WITHSCORES')
  if #lifts > 0 and (due < 0 or tonumber(lifts[2]) < due) then due = tonumber(lifts[2]) end
end

local out = {now, due, ''}
if #ids > 0 then
  local records = redis.call('HMGET', k.jobs, unpack(ids))
  local attempts = redis.call('HMGET', k.attempts, unpack(ids))
  local leases = {}
  for i, id in ipairs(ids) do
    if records[i] then -- a job removed while it waited is skipped
      out[#out + 1] = id
      out[#out + 1] = records[i]
      out[#out + 1] = attempts[i] or '0'
      leases[#leases + 1] = deadline
      leases[#leases + 1] = id .. '@' .. token
    end
  end
  if #leases > 0 then
    redis.call('ZADD', k.active, unpack(leases))
    local started = {}
    for i = 4, #out, 3 do started[#started + 1] = out[i] end
    journal(k, 'active', started, token)
  end
  if rate_max and rate_max > 0 then
    if redis.call('INCRBY', k.rate, #ids) == #ids then
      redis.call('PEXPIRE', k.rate, tonumber(meta[3]) or 1000)
    end
  end
end
-- More ready than we took: pass the wake-up on to the next idle worker. None left: clear a
-- stale wake-up (from enqueues this claim served), so no idle worker wakes for nothing.
if #ids == n and (redis.call('LLEN', k.wait) > 0 or redis.call('ZCARD', k.prio) > 0 or
    redis.call('ZCARD', k.groups) > 0) then
  wake(k)
elseif #ids < n then
  redis.call('DEL', k.marker)
end
return out
