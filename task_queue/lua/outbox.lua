-- Notices left in this queue's outbox (lib.lua notify_parent) for longer than `age`: their
-- process died (or lost its connection) between a child's end and its parent's update. The
-- caller applies them (apply.lua, idempotent) and deletes them.
--
-- KEYS[1] queue prefix   ARGV[1] age ms   ARGV[2] limit
-- Returns the notices, flat as notify_parent appends them: {stream id, notice, ...}.
local k = keys_of(KEYS[1])
local before = now_ms() - tonumber(ARGV[1])
if before < 0 then return {} end
local entries = redis.call('XRANGE', k.outbox, '-', before, 'COUNT', tonumber(ARGV[2]))
local out = {}
for _, e in ipairs(entries) do
  -- Fields "n", each a notice (lib.lua notify_parent, write_notices).
  local v = e[2]
  local n = #out
  for i = 2, #v, 2 do
    if v[i - 1] == 'n' then
      local m = #out
      out[m + 1], out[m + 2] = e[1], v[i]
    end
  end
  if #out == n then
    redis.call('XDEL', k.outbox, e[1]) -- not a notice: written by something else
  end
end
return out
