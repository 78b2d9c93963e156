-- A batch of failed runs of one worker: each job is retried after its backoff (delay ms > 0:
-- delayed set; 0: ready again) or, when out of attempts or cancelled, ends in the failed set
-- with its last error. Attempts count failures, so a recovered job keeps its count.
--
-- KEYS[1] queue prefix   KEYS[2] this minute's metrics hash
-- ARGV[1] n   ARGV[2] token, then per job: id, delay ms (-1 final failure, -2 cancelled),
-- error text, unique key, priority, flow text ('' outside a flow), group ('' none).
-- Returns {ids whose lease was lost, notices to parents (lib.lua notify_parent, flat)}: a job
-- of a flow that ends for good tells its parent.
local k = keys_of(KEYS[1])
local now = now_ms()
local n = tonumber(ARGV[1])
local token = ARGV[2]
local lost, notify, notices = {}, {}, {}
local retried, ended, cancelled = {}, {}, {}
local failed = 0
for j = 0, n - 1 do
  local b = 3 + j * 7
  local id = ARGV[b]
  local group = ARGV[b + 6]
  if redis.call('ZREM', k.active, id .. '@' .. token) == 0 then
    lost[#lost + 1] = id
  else
    if group ~= '' then group_left(k, group) end
    local delay, text, uk = tonumber(ARGV[b + 1]), ARGV[b + 2], ARGV[b + 3]
    local pr = tonumber(ARGV[b + 4])
    redis.call('HINCRBY', k.attempts, id, 1)
    if delay == -2 then -- cancel.lua left the reason in `errors`
      text = redis.call('HGET', k.errors, id) or text
    end
    redis.call('HSET', k.errors, id, text)
    redis.call('SREM', k.cancel, id)
    if delay < 0 then
      to_failed(k, id, text, uk, now, delay == -2 and 'x' or 'f')
      failed = failed + 1
      notify[#notify + 1] = id
      if delay == -2 then cancelled[#cancelled + 1] = id else ended[#ended + 1] = id end
      local f = parse_flow(ARGV[b + 5])
      if f and f.policy ~= '-' then
        notify_parent(k, f, queue_of(KEYS[1]) .. ' ' .. id, (delay == -2 and 'x' or 'f') .. text,
          notices)
      end
    elseif delay > 0 then
      retried[#retried + 1] = id
      redis.call('ZADD', k.delayed, now + delay, id)
      redis.call('HINCRBY', k.stats, 'retried', 1)
      wake(k)
    else
      retried[#retried + 1] = id
      make_ready(k, id, pr, false, group)
      redis.call('HINCRBY', k.stats, 'retried', 1)
      wake(k)
    end
  end
end
if failed > 0 then
  redis.call('HINCRBY', KEYS[2], 'f', failed)
  redis.call('PEXPIRE', KEYS[2], 7200000)
end
if #notify > 0 then publish(k, 'done ' .. table.concat(notify, ' ')) end
journal(k, 'retried', retried)
journal(k, 'failed', ended)
journal(k, 'cancelled', cancelled)
return {lost, notices}
