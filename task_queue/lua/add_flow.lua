-- Adds jobs of a flow (akv/queue/flow.hpp) whose ids the caller reserved (INCRBY of `id`): a
-- parent waits in `waiting_children`, its children listed in `children` ("<id>:<i>" -> "<queue>
-- <id>" while pending) with their count ("<id>:p"); a leaf goes to the ready states or the
-- delayed set, as enqueue.lua's jobs do. The caller adds a flow from its root down, one depth
-- per call, so a child can run only once its parent waits for it. A job already there (a call
-- sent again) is skipped.
--
-- KEYS[1] queue prefix
-- ARGV[1] n, then per job: id, record, delay ms, priority, m, then m children "<queue> <id>"
-- Returns the number of jobs added.
local k = keys_of(KEYS[1])
local now = now_ms()
local n = tonumber(ARGV[1])
local added, parents, plain, records = {}, {}, {}, {}
local b = 2
local ready = false
for _ = 1, n do
  local id, rec, delay, pr = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local m = tonumber(ARGV[b + 4])
  if redis.call('HEXISTS', k.jobs, id) == 0 then
    added[#added + 1] = id
    records[#records + 1] = id
    records[#records + 1] = rec
    if m > 0 then
      local fields = {id .. ':p', m}
      for i = 1, m do
        fields[#fields + 1] = id .. ':' .. i
        fields[#fields + 1] = ARGV[b + 4 + i]
      end
      variadic('HSET', k.children, fields)
      redis.call('ZADD', k.waiting_children, now, id)
      parents[#parents + 1] = id
    elseif delay > 0 then
      redis.call('ZADD', k.delayed, now + delay, id)
    elseif string.byte(rec, 1) == 51 then -- "3|": a grouped job
      make_ready(k, id, 0, false, header(rec).group)
    elseif pr ~= 0 then
      redis.call('ZADD', k.prio, prio_score(pr, id), id)
      ready = true
    else
      plain[#plain + 1] = id
    end
  end
  b = b + 5 + m
end
if #records > 0 then variadic('HSET', k.jobs, records) end
journal(k, 'added', added)
journal(k, 'waiting-children', parents)
if #plain > 0 then variadic('LPUSH', k.wait, plain); ready = true end
if #added > #parents then wake(k) end
return #added
