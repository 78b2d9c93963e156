-- Adds n jobs in one call: ids from one INCRBY, records in the `jobs` hash, each job to the
-- ready list, the priority set or the delayed set. A job whose unique key names a job still
-- pending (waiting, delayed, active) is not added: the existing id is returned in its place.
-- Deduplication by window (job.hpp dedup): `dedup` maps "t:<key>" to "<until ms>:<id>" (a
-- throttle) and "d:<key>" to the id of the job debounced (waiting in `delayed`); `dedup_until`
-- scores those fields by the end of their window, so expired ones are dropped as calls pass.
--
-- KEYS[1] queue prefix
-- ARGV[1] n, then per job: record, unique key ('' = none), delay ms, priority,
--         dedup ('' = none, else "<t|d><window ms>|<key>")
local k = keys_of(KEYS[1])
local now = nil -- the server's clock, read only for delayed or deduplicated jobs
local n = tonumber(ARGV[1])
local pruned = false
local out, plain, records = {}, {}, {}
local written = {} -- id -> index of its record in `records`, for a debounce within the call

-- Fields whose window ended, a bounded number per call.
local function prune()
  if pruned then return end
  pruned = true
  local gone = redis.call('ZRANGEBYSCORE', k.dedup_until, '-inf', now, 'LIMIT', 0, 100)
  if #gone > 0 then
    redis.call('HDEL', k.dedup, unpack(gone))
    redis.call('ZREM', k.dedup_until, unpack(gone))
  end
end

-- The id a job deduplicated by `dd` gives way to (nil: it is added), after any replacement.
local function deduplicated(dd, id, rec)
  now = now or now_ms()
  prune()
  local mode = string.sub(dd, 1, 1)
  local bar = string.find(dd, '|', 2, true)
  local window = tonumber(string.sub(dd, 2, bar - 1))
  local field = mode .. ':' .. string.sub(dd, bar + 1)
  local held = redis.call('HGET', k.dedup, field)
  if mode == 't' then
    if held then
      local colon = string.find(held, ':', 1, true)
      if tonumber(string.sub(held, 1, colon - 1)) > now then
        redis.call('HINCRBY', k.stats, 'throttled', 1)
        return string.sub(held, colon + 1)
      end
    end
    redis.call('HSET', k.dedup, field, (now + window) .. ':' .. id)
  else
    if held and redis.call('ZSCORE', k.delayed, held) then
      if written[held] then
        records[written[held]] = rec -- added earlier in this call: its record is not out yet
      else
        redis.call('HSET', k.jobs, held, rec)
      end
      redis.call('ZADD', k.delayed, now + window, held)
      redis.call('ZADD', k.dedup_until, now + window, field)
      redis.call('HINCRBY', k.stats, 'debounced', 1)
      journal(k, 'debounced', {held})
      return held
    end
    redis.call('HSET', k.dedup, field, id)
  end
  redis.call('ZADD', k.dedup_until, now + window, field)
  return nil
end

local last = redis.call('INCRBY', k.id, n)
local first = last - n + 1
local ready = false
local fresh = {} -- unique keys taken in this call (their records are written at the end)
local grouped = {} -- group -> ids ready in it
for j = 0, n - 1 do
  local b = 2 + j * 5
  local rec, uk, delay, pr = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local dd = ARGV[b + 4]
  local id = tostring(first + j)
  local existing = nil
  if dd ~= '' then
    existing = deduplicated(dd, id, rec)
  elseif uk ~= '' then
    local old = fresh[uk] or redis.call('HGET', k.unique, uk)
    if old and (fresh[uk] or (redis.call('HEXISTS', k.jobs, old) == 1 and
        redis.call('ZSCORE', k.failed, old) == false)) then
      existing = old
    else
      redis.call('HSET', k.unique, uk, id)
      fresh[uk] = id
    end
  end
  if existing then
    out[#out + 1] = existing
  else
    records[#records + 1] = id
    records[#records + 1] = rec
    written[id] = #records
    if delay > 0 then
      now = now or now_ms()
      redis.call('ZADD', k.delayed, now + delay, id)
    elseif string.byte(rec, 1) == 51 then -- "3|": a grouped job (its group in its header)
      local g = header(rec).group
      local list = grouped[g]
      if not list then
        list = {}
        grouped[g] = list
      end
      list[#list + 1] = id
    elseif pr ~= 0 then
      redis.call('ZADD', k.prio, prio_score(pr, id), id)
      ready = true
    else
      plain[#plain + 1] = id
    end
    out[#out + 1] = id
  end
end
if #records > 0 then
  variadic('HSET', k.jobs, records)
  local added = {}
  for i = 1, #records, 2 do added[#added + 1] = records[i] end
  journal(k, 'added', added)
end
if #plain > 0 then variadic('LPUSH', k.wait, plain); ready = true end
for g, ids in pairs(grouped) do
  variadic('LPUSH', k['g:' .. g], ids)
  group_ready(k, g)
end
-- Idle workers block on the marker; a delayed job wakes them too, so they learn its due time.
if #records > 0 then wake(k) end
return out
