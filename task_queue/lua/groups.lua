-- The queue's fair groups (lib.lua group_ready): every group with ready or running jobs, each
-- with its ready and running counts, its state and its limits; or, with ARGV[1] 'drop', deletes
-- their keys (what obliterate cannot name by itself).
--
-- KEYS[1] queue prefix   ARGV[1] 'list' | 'drop'
-- Returns for 'list' {group count, ready jobs in groups, then per group: name, ready, running,
-- state ('ready' | 'maxed' | 'limited' | 'idle'), concurrency, rate max, rate window ms,
-- '1' when the group has limits of its own}; for 'drop' the number of groups.
local k = keys_of(KEYS[1])
local names, seen = {}, {}
local function add(list, step)
  for i = 1, #list, step do
    if not seen[list[i]] then
      seen[list[i]] = true
      names[#names + 1] = list[i]
    end
  end
end
add(redis.call('ZRANGE', k.groups, 0, -1), 1)
add(redis.call('SMEMBERS', k['groups:maxed']), 1)
add(redis.call('ZRANGE', k['groups:limited'], 0, -1), 1)
add(redis.call('HKEYS', k['groups:active']), 1)
if ARGV[1] == 'drop' then
  for _, g in ipairs(names) do redis.call('DEL', k['g:' .. g], k['grate:' .. g]) end
  for _, g in ipairs(redis.call('HKEYS', k['groups:limits'])) do
    redis.call('DEL', k['grate:' .. g])
  end
  return #names
end
local out = {0, 0}
local listed, ready_total = 0, 0
local defaults = group_defaults(k)
for _, g in ipairs(names) do
  local ready = redis.call('LLEN', k['g:' .. g])
  local running = tonumber(redis.call('HGET', k['groups:active'], g) or '0')
  -- A group whose list ran dry stays in the ring until its next turn: not listed.
  if ready > 0 or running > 0 then
    listed = listed + 1
    ready_total = ready_total + ready
    local state = 'idle'
    if ready > 0 then
      if redis.call('ZSCORE', k.groups, g) then state = 'ready'
      elseif redis.call('SISMEMBER', k['groups:maxed'], g) == 1 then state = 'maxed'
      elseif redis.call('ZSCORE', k['groups:limited'], g) then state = 'limited' end
    end
    local lim = group_limits(k, g, defaults)
    out[#out + 1] = g
    out[#out + 1] = ready
    out[#out + 1] = running
    out[#out + 1] = state
    out[#out + 1] = lim[1]
    out[#out + 1] = lim[2]
    out[#out + 1] = lim[3]
    out[#out + 1] = redis.call('HEXISTS', k['groups:limits'], g) == 1 and '1' or '0'
  end
end
out[1] = listed
out[2] = ready_total
return out
