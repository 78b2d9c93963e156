-- Helpers shared by the blob_store scripts: blob_store.cpp puts this file in front of each of
-- them. The layout of one object (akv/kv/blob_store.hpp tells it in full):
--   <prefix>{name}:meta                 hash: size, chunks, chunk_size, generation, ...
--   <prefix>{name}:chunk:<gen>:<i>      string: chunk i of generation gen
--   <prefix>{name}:readers              zset: "<gen>:<token>" -> end of that reader's lease (ms)
-- Chunk bytes never pass through these scripts (Lua copies large strings slowly): a put SETs
-- its chunks, a reader GETs them. A script that names chunks gets their keys' common start
-- ("<prefix>{name}:chunk:") as its ARGV[1].

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function chunk_key(base, gen, i)
  return base .. gen .. ':' .. string.format('%d', i)
end

-- The manifest as {fields = HGETALL, size =, chunks =, generation =}; nil when there is none;
-- nil and a message naming the key when it is not a manifest we could have written.
local function manifest_of(key)
  local fields = redis.pcall('HGETALL', key)
  if fields.err then
    return nil, 'blob_store: corrupted manifest ' .. key .. ': not a hash (' .. fields.err .. ')'
  end
  if #fields == 0 then return nil end
  local m = {}
  for i = 1, #fields, 2 do m[fields[i]] = fields[i + 1] end
  for _, name in ipairs({'size', 'chunks', 'generation'}) do
    if not m[name] or not string.match(m[name], '^%d+$') then
      return nil, 'blob_store: corrupted manifest ' .. key .. ': field "' .. name .. '" is ' ..
                  (m[name] and ('"' .. m[name] .. '"') or 'missing')
    end
  end
  return {fields = fields, size = tonumber(m.size), chunks = tonumber(m.chunks),
          generation = m.generation}
end

-- Forgets the readers whose lease has ended; returns when the last lease on generation gen ends
-- (0: no reader holds one).
local function lease_end(readers, gen, now)
  redis.call('ZREMRANGEBYSCORE', readers, '-inf', now)
  local latest = 0
  local mine = gen .. ':'
  local all = redis.call('ZRANGE', readers, 0, -1, 'WITHSCORES')
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, #mine) == mine then latest = math.max(latest, tonumber(all[i + 1])) end
  end
  return latest
end

-- Keeps the readers set until `expiry` at least, so the leases of readers that died go too.
local function hold_readers(readers, expiry)
  redis.call('PEXPIREAT', readers, expiry, 'NX')
  redis.call('PEXPIREAT', readers, expiry, 'GT')
end

local function unlink_chunks(base, gen, chunks)
  local keys = {}
  for i = 0, chunks - 1 do
    keys[#keys + 1] = chunk_key(base, gen, i)
    if #keys == 1000 or i == chunks - 1 then
      redis.call('UNLINK', unpack(keys))
      keys = {}
    end
  end
end

-- A generation that no manifest names any more: its chunks go now, or when the last reader
-- holding a lease on it is done (blob_release.lua), or at the end of that lease at the latest.
local function retire(base, readers, gen, chunks, now)
  local until_ms = 0
  if redis.call('EXISTS', readers) == 1 then until_ms = lease_end(readers, gen, now) end
  if until_ms == 0 then return unlink_chunks(base, gen, chunks) end
  for i = 0, chunks - 1 do redis.call('PEXPIREAT', chunk_key(base, gen, i), until_ms) end
end
