-- Shared by the gateway's history scripts (prepended to each). KEYS[1]: the channel's stream,
-- KEYS[2]: its meta hash: epoch (the history's generation), top (the newest offset written),
-- cut (the newest offset ever trimmed), rid (the master's replication id at the last write).
--
-- A position is an epoch and an offset. The epoch changes whenever the history may have lost
-- messages without trimming them: its keys were lost (a restart without persistence, FLUSHALL,
-- an evicted key: the meta is missing, or disagrees with the stream), or this master was a
-- replica when the history was written last (a failover: the tail may not have reached it). A
-- resume from another epoch is a gap: "recovered" is never claimed for a history that may be
-- missing what a client was sent.
local stream, meta = KEYS[1], KEYS[2]

local function split(id)
  local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

local function older(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  return am < bm or (am == bm and as < bs)
end

-- The stream's last entry, or nil.
local function last_entry()
  local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #top > 0 then return top[1][1] end
  return nil
end

-- This master's replication ids: its own, and the one of the master it was a replica of
-- before a failover promoted it (all zeros for a master that never was a replica).
local function replication_ids()
  local info = redis.call('INFO', 'replication')
  return string.match(info, 'master_replid:(%x+)'), string.match(info, 'master_replid2:(%x+)')
end

-- The history's epoch, made anew when the stored one cannot be trusted (see above). `write`:
-- the caller writes the history now (a publish), so a new epoch is stored; a resume only reads
-- whether the stored one still holds (nil when it does not).
local function current_epoch(write)
  local m = redis.call('HMGET', meta, 'epoch', 'top', 'cut', 'rid')
  local epoch, top, cut, rid = m[1], m[2], m[3], m[4]
  local id, id2 = replication_ids()
  local last = last_entry()
  local intact = epoch ~= false and top ~= false
  if intact then
    -- Written here since: fine. Restarted from this node's own data (no replica past): the
    -- data is what persistence kept, and the meta was written with it. Otherwise a failover.
    intact = rid == id or string.match(id2, '^0+$') ~= nil
  end
  if intact then
    -- The stream must end where the meta says (or be trimmed empty at its cut).
    if last then intact = last == top else intact = (cut ~= false and cut == top) or top == '0-0' end
  end
  if intact then
    if rid ~= id and write then redis.call('HSET', meta, 'rid', id) end
    return epoch, cut
  end
  if not write then return nil, nil end
  local t = redis.call('TIME')
  epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
  -- What the stream holds now starts the new epoch; nothing before it can be resumed from.
  top = last or '0-0'
  redis.call('HSET', meta, 'epoch', epoch, 'top', top, 'cut', top, 'rid', id)
  return epoch, top
end

-- Drops entries older than age_ms, remembering the newest one dropped.
local function trim_age(age_ms)
  if age_ms <= 0 then return end
  local t = redis.call('TIME')
  local minid = (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - age_ms) .. '-0'
  local old = redis.call('XREVRANGE', stream, '(' .. minid, '-', 'COUNT', 1)
  if #old > 0 then
    redis.call('XTRIM', stream, 'MINID', minid)
    redis.call('HSET', meta, 'cut', old[1][1])
  end
end
