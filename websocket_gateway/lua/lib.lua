-- Shared by the gateway's history scripts (prepended to each). KEYS[1]: the channel's stream,
-- KEYS[2]: the newest offset ever trimmed from it.
local stream, trimmed = KEYS[1], KEYS[2]

local function split(id)
  local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

local function older(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  return am < bm or (am == bm and as < bs)
end

-- Drops entries older than age_ms, remembering the newest one dropped.
local function trim_age(age_ms)
  if age_ms <= 0 then return end
  local t = redis.call('TIME')
  local minid = (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - age_ms) .. '-0'
  local old = redis.call('XREVRANGE', stream, '(' .. minid, '-', 'COUNT', 1)
  if #old > 0 then
    redis.call('XTRIM', stream, 'MINID', minid)
    redis.call('SET', trimmed, old[1][1])
  end
end

-- The newest offset: the stream's last entry, else the last trimmed one, else 0-0.
local function newest()
  local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #top > 0 then return top[1][1] end
  return redis.call('GET', trimmed) or '0-0'
end
