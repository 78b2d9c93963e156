-- Who is subscribed to a channel, across every gateway process. KEYS[1]: the hash client id ->
-- entry (JSON: client, user, info), KEYS[2]: the sorted set client id -> expiry (ms). ARGV[1]:
-- the channel to announce leaves on ('' for none), ARGV[2]: PUBLISH or SPUBLISH, ARGV[3]: what
-- to do: 'update' (ARGV[4]: ttl ms, then client id, entry pairs: added or refreshed), 'remove'
-- (client ids), 'list', 'stats' or 'count'. Every call first drops the entries whose gateway
-- stopped refreshing them (it crashed): a session outlives its gateway by the ttl at most, and
-- its leave is announced then, as its gateway would have.
-- Returns: update, remove: how many entries expired; list: client id, entry, ...; stats:
-- {clients, distinct users}; count: clients.
local entries, expiry = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local announce, publish = ARGV[1], ARGV[2]
local expired = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, 1000)
if #expired > 0 then
  if announce ~= '' then
    for _, entry in ipairs(redis.call('HMGET', entries, unpack(expired))) do
      if entry then redis.call(publish, announce, '\29leave\29' .. entry) end
    end
  end
  redis.call('HDEL', entries, unpack(expired))
  redis.call('ZREM', expiry, unpack(expired))
end

local op = ARGV[3]
if op == 'update' then
  local ttl = tonumber(ARGV[4])
  for i = 5, #ARGV, 2 do
    redis.call('HSET', entries, ARGV[i], ARGV[i + 1])
    redis.call('ZADD', expiry, now + ttl, ARGV[i])
  end
  -- A channel nobody refreshes any more goes as a whole.
  redis.call('PEXPIRE', entries, ttl)
  redis.call('PEXPIRE', expiry, ttl)
  return #expired
elseif op == 'remove' then
  for i = 4, #ARGV do
    redis.call('HDEL', entries, ARGV[i])
    redis.call('ZREM', expiry, ARGV[i])
  end
  return #expired
elseif op == 'list' then
  return redis.call('HGETALL', entries)
elseif op == 'stats' then
  local users = {}
  local distinct = 0
  for _, entry in ipairs(redis.call('HVALS', entries)) do
    local ok, e = pcall(cjson.decode, entry)
    local user = ok and type(e) == 'table' and e.user or ''
    if not users[user] then
      users[user] = true
      distinct = distinct + 1
    end
  end
  return {redis.call('HLEN', entries), distinct}
elseif op == 'count' then
  return redis.call('HLEN', entries)
end
return redis.error_reply('presence.lua: unknown op ' .. tostring(op))
