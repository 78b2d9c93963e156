-- Sets the fair groups' limits: every group's default (ARGV[1] '') or one group's own; a group's
-- own limits cleared with ARGV[2] 'clear'. Groups held at a limit are looked at again at once:
-- those now under it go back into the ring (claim checks the rate again).
--
-- KEYS[1] queue prefix   ARGV[1] group ('' the defaults)   ARGV[2] 'set' | 'clear'
-- ARGV[3] concurrency   ARGV[4] rate max   ARGV[5] rate window ms (0 each: no limit)
local k = keys_of(KEYS[1])
local g = ARGV[1]
if ARGV[2] == 'clear' then
  redis.call('HDEL', k['groups:limits'], g)
elseif g == '' then
  redis.call('HSET', k.meta, 'group_concurrency', ARGV[3], 'group_rate_max', ARGV[4],
    'group_rate_window', ARGV[5])
else
  redis.call('HSET', k['groups:limits'], g, ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5])
end
local freed = 0
for _, m in ipairs(redis.call('SMEMBERS', k['groups:maxed'])) do
  local c = group_limits(k, m)[1]
  if c == 0 or tonumber(redis.call('HGET', k['groups:active'], m) or '0') < c then
    redis.call('SREM', k['groups:maxed'], m)
    if redis.call('LLEN', k['g:' .. m]) > 0 then
      group_ready(k, m)
      freed = freed + 1
    end
  end
end
for _, m in ipairs(redis.call('ZRANGE', k['groups:limited'], 0, -1)) do
  redis.call('ZREM', k['groups:limited'], m)
  if redis.call('LLEN', k['g:' .. m]) > 0 then
    group_ready(k, m)
    freed = freed + 1
  end
end
if freed > 0 then wake(k) end
return freed
