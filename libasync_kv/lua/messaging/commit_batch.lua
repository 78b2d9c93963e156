-- Writes a batch's outputs, then acks its inputs: the ack is the last call, so any failure
-- before it (a wrong-type output key, a crash) leaves every input pending, never acked without
-- its output. A retried batch may write its outputs twice: delivery is at least once.
--
-- KEYS[1] input stream   KEYS[2] output stream
-- ARGV[1] group   ARGV[2] MAXLEN for the output ('' = no trim)   ARGV[3] '~' or '='
-- ARGV[4] n ids, then the n ids; then m outputs, each as k (field count x 2) then k values.
local i = 4
local n = tonumber(ARGV[i]); i = i + 1
local ids = {}
for j = 1, n do ids[j] = ARGV[i]; i = i + 1 end
local m = tonumber(ARGV[i]); i = i + 1
for _ = 1, m do
  local k = tonumber(ARGV[i]); i = i + 1
  local args = {KEYS[2]}
  if ARGV[2] ~= '' then
    args[#args + 1] = 'MAXLEN'; args[#args + 1] = ARGV[3]; args[#args + 1] = ARGV[2]
  end
  args[#args + 1] = '*'
  for _ = 1, k do args[#args + 1] = ARGV[i]; i = i + 1 end
  redis.call('XADD', unpack(args))
end
if n > 0 then redis.call('XACK', KEYS[1], ARGV[1], unpack(ids)) end
return m
