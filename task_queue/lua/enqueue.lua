-- Adds n jobs in one call: ids from one INCRBY, records in the `jobs` hash, each job to the
-- ready list, the priority set or the delayed set. A job whose unique key names a job still
-- pending (waiting, delayed, active) is not added: the existing id is returned in its place.
--
-- KEYS[1] queue prefix
-- ARGV[1] n, then per job: record, unique key ('' = none), delay ms, priority
local k = keys_of(KEYS[1])
local now = nil -- the server's clock, read only for delayed jobs
local n = tonumber(ARGV[1])
local last = redis.call('INCRBY', k.id, n)
local first = last - n + 1
local out, plain, records = {}, {}, {}
local ready = false
local fresh = {} -- unique keys taken in this call (their records are written at the end)
for j = 0, n - 1 do
  local b = 2 + j * 4
  local rec, uk, delay, pr = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local id = tostring(first + j)
  local existing = nil
  if uk ~= '' then
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
    if delay > 0 then
      now = now or now_ms()
      redis.call('ZADD', k.delayed, now + delay, id)
    elseif pr ~= 0 then
      redis.call('ZADD', k.prio, prio_score(pr, id), id)
      ready = true
    else
      plain[#plain + 1] = id
    end
    out[#out + 1] = id
  end
end
if #records > 0 then variadic('HSET', k.jobs, records) end
if #plain > 0 then variadic('LPUSH', k.wait, plain); ready = true end
-- Idle workers block on the marker; a delayed job wakes them too, so they learn its due time.
if #records > 0 then wake(k) end
return out
