-- Extends the leases one worker holds. Returns {lost ids, ids asked to cancel}: a lost lease
-- means the job was recovered (the worker stalled past its deadline) and runs elsewhere now.
--
-- KEYS[1] queue prefix   ARGV[1] lease ms   ARGV[2] token   ARGV[3..] ids
local k = keys_of(KEYS[1])
local deadline = now_ms() + tonumber(ARGV[1])
local token = ARGV[2]
local lost, cancel, leases = {}, {}, {}
local members = {}
for i = 3, #ARGV do members[#members + 1] = ARGV[i] .. '@' .. token end
if #members == 0 then return {lost, cancel} end
local held = redis.call('ZMSCORE', k.active, unpack(members))
local asked = redis.call('SMISMEMBER', k.cancel, unpack(ARGV, 3))
for i = 1, #members do
  local id = ARGV[i + 2]
  if held[i] then
    leases[#leases + 1] = deadline
    leases[#leases + 1] = members[i]
    if asked[i] == 1 then cancel[#cancel + 1] = id end
  else
    lost[#lost + 1] = id
  end
end
if #leases > 0 then variadic('ZADD', k.active, leases) end
return {lost, cancel}
