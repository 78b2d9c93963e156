-- A worker shutting down gives back jobs it claimed but will not finish: to the head of the
-- line, no attempt counted (the job did not fail; its worker left), its progress cleared (the
-- next run starts over).
--
-- KEYS[1] queue prefix   ARGV[1] token   ARGV[2..] ids
local k = keys_of(KEYS[1])
local back = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', k.active, id .. '@' .. ARGV[1]) == 1 then
    local rec = redis.call('HGET', k.jobs, id)
    if rec then
      redis.call('HDEL', k.progress, id)
      local h = header(rec)
      if h and h.group ~= '' then group_left(k, h.group) end
      make_ready(k, id, h and h.priority or 0, true, h and h.group)
      back = back + 1
    end
  end
end
if back > 0 then wake(k) end
return back
