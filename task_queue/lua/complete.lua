-- Acks a batch of finished jobs of one worker: lease, record and attempts go; the result is
-- kept for its TTL; unique keys are freed; per-minute metrics are counted. A job whose lease
-- this worker no longer holds (it expired and the job was recovered) is reported back, not
-- completed twice. Expired results are swept a hundred at a time.
--
-- KEYS[1] queue prefix   KEYS[2] this minute's metrics hash
-- ARGV[1] n   ARGV[2] token, then per job: id, result ttl ms, result, unique key, '1' when
-- an earlier run failed or a run reported progress (attempts, error and progress to clear),
-- flow text ('' outside a flow: the one check a plain job pays), group ('' none); then m, then
-- m (metric field,
-- increment) pairs for this minute's metrics, and the completed count for the stats hash (the
-- worker sends metrics about once a second, not with every batch).
-- Returns {ids whose lease was lost, notices to parents (lib.lua notify_parent, flat; those of
-- the batch share one outbox entry: write_notices)}.
local k = keys_of(KEYS[1])
local n = tonumber(ARGV[1])
local token = ARGV[2]
local members = {}
for j = 0, n - 1 do members[#members + 1] = ARGV[3 + j * 7] .. '@' .. token end
local now = nil -- the server's clock, read only to keep results
local lost, gone, own, notify, leftovers, to_parents = {}, {}, {}, {}, {}, {}
local me = nil -- this queue's name, for the notices of a flow's children
local left_groups = {} -- group -> its jobs acked here
if n > 0 then
  local held = redis.call('ZMSCORE', k.active, unpack(members))
  for j = 0, n - 1 do
    local b = 3 + j * 7
    local id = ARGV[b]
    if held[j + 1] then
      local g = ARGV[b + 6]
      if g ~= '' then left_groups[g] = (left_groups[g] or 0) + 1 end
      gone[#gone + 1] = id
      own[#own + 1] = members[j + 1]
      local ttl = tonumber(ARGV[b + 1])
      if ttl > 0 then
        now = now or now_ms()
        keep_result(k, id, ARGV[b + 2], ttl, now)
        notify[#notify + 1] = id
      end
      forget_unique(k, ARGV[b + 3], id)
      if ARGV[b + 4] == '1' then leftovers[#leftovers + 1] = id end
      local flow = ARGV[b + 5]
      if flow ~= '' then
        if string.byte(flow) ~= 45 then forget_children(k, id, parse_flow(flow).n) end -- a parent
        me = me or queue_of(KEYS[1])
        local notice = completed_notice(flow, me, id, ARGV[b + 2])
        if notice then to_parents[#to_parents + 1] = notice end
      end
    else
      lost[#lost + 1] = id
    end
  end
end
for g, c in pairs(left_groups) do group_left(k, g, c) end
local notices = {}
if #to_parents > 0 then write_notices(k, to_parents, notices) end
if #gone > 0 then
  journal(k, 'completed', gone)
  variadic('ZREM', k.active, own)
  variadic('HDEL', k.jobs, gone)
  if #leftovers > 0 then
    variadic('HDEL', k.attempts, leftovers)
    variadic('HDEL', k.errors, leftovers)
    variadic('HDEL', k.progress, leftovers)
  end
end
local i = 3 + n * 7
local m = tonumber(ARGV[i] or '0')
for x = 1, m do
  redis.call('HINCRBY', KEYS[2], ARGV[i + 2 * x - 1], tonumber(ARGV[i + 2 * x]))
end
if m > 0 then
  redis.call('PEXPIRE', KEYS[2], 7200000)
  redis.call('HINCRBY', k.stats, 'completed', tonumber(ARGV[i + 2 * m + 1]))
end
if #notify > 0 then
  -- Results were kept: sweep expired ones, a hundred at a time.
  local expired = redis.call('ZRANGEBYSCORE', k.done, '-inf', now, 'LIMIT', 0, 100)
  if #expired > 0 then
    variadic('ZREM', k.done, expired)
    variadic('HDEL', k.results, expired)
  end
  publish(k, 'done ' .. table.concat(notify, ' '))
end
return {lost, notices}
