-- Acks a batch of finished jobs of one worker: lease, record and attempts go; the result is
-- kept for its TTL; unique keys are freed; per-minute metrics are counted. A job whose lease
-- this worker no longer holds (it expired and the job was recovered) is reported back, not
-- completed twice. Expired results are swept a hundred at a time.
--
-- KEYS[1] queue prefix   KEYS[2] this minute's metrics hash
-- ARGV[1] n   ARGV[2] token, then per job: id, result ttl ms, result, unique key
-- then m, then m (metric field, increment) pairs.
-- Returns the ids whose lease was lost.
local k = keys_of(KEYS[1])
local now = now_ms()
local n = tonumber(ARGV[1])
local token = ARGV[2]
local members = {}
for j = 0, n - 1 do members[#members + 1] = ARGV[3 + j * 4] .. '@' .. token end
local lost, gone, notify = {}, {}, {}
if n > 0 then
  local held = redis.call('ZMSCORE', k.active, unpack(members))
  for j = 0, n - 1 do
    local b = 3 + j * 4
    local id = ARGV[b]
    if held[j + 1] then
      gone[#gone + 1] = id
      local ttl = tonumber(ARGV[b + 1])
      if ttl > 0 then
        keep_result(k, id, 'c', ARGV[b + 2], ttl, now)
        notify[#notify + 1] = id
      end
      forget_unique(k, ARGV[b + 3], id)
    else
      lost[#lost + 1] = id
    end
  end
end
if #gone > 0 then
  local own = {}
  for _, id in ipairs(gone) do own[#own + 1] = id .. '@' .. token end
  variadic('ZREM', k.active, own)
  variadic('HDEL', k.jobs, gone)
  variadic('HDEL', k.attempts, gone)
  variadic('HDEL', k.errors, gone)
  redis.call('HINCRBY', k.stats, 'completed', #gone)
end
local i = 3 + n * 4
local m = tonumber(ARGV[i] or '0')
for x = 1, m do
  redis.call('HINCRBY', KEYS[2], ARGV[i + 2 * x - 1], tonumber(ARGV[i + 2 * x]))
end
if m > 0 then redis.call('PEXPIRE', KEYS[2], 7200000) end
local expired = redis.call('ZRANGEBYSCORE', k.done, '-inf', now, 'LIMIT', 0, 100)
if #expired > 0 then
  variadic('ZREM', k.done, expired)
  variadic('HDEL', k.results, expired)
end
if #notify > 0 then publish(k, 'done ' .. table.concat(notify, ' ')) end
return lost
