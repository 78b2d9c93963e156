-- Notices left in this queue's outbox (lib.lua notify_parent) for longer than `age`: their
-- process died (or lost its connection) between a child's end and its parent's update. The
-- caller applies them (apply.lua, idempotent) and deletes them.
--
-- KEYS[1] queue prefix   ARGV[1] age ms   ARGV[2] limit
-- Returns the notices, flat as notify_parent appends them.
local k = keys_of(KEYS[1])
local before = now_ms() - tonumber(ARGV[1])
if before < 0 then return {} end
local entries = redis.call('XRANGE', k.outbox, '-', before, 'COUNT', tonumber(ARGV[2]))
local out = {}
for _, e in ipairs(entries) do
  local v = {}
  for i = 1, #e[2], 2 do v[e[2][i]] = e[2][i + 1] end
  if v.q and v.j and v.i and v.m and v.c and v.o then
    local n = #out
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = e[1], v.q, v.j, v.i
    out[n + 5], out[n + 6], out[n + 7] = v.m, v.c, v.o
  else
    redis.call('XDEL', k.outbox, e[1]) -- not a notice: written by something else
  end
end
return out
