-- Scheduler leadership: take the key when free, extend it when ours, give it up on request.
--
-- KEYS[1] queue prefix   ARGV[1] token   ARGV[2] ttl ms (0: resign)
-- Returns 1 while leader, 0 otherwise.
local key = KEYS[1] .. 'leader'
local holder = redis.call('GET', key)
if ARGV[2] == '0' then
  if holder == ARGV[1] then redis.call('DEL', key) end
  return 0
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', key, ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
