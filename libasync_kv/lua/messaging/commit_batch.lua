-- Writes a batch's outputs, then acks its inputs: the ack is the last call, so any failure
-- before it (a wrong-type output key, a crash) leaves every input pending, never acked without
-- its output. A retried batch may write its outputs twice: delivery is at least once.
-- Arguments are passed straight from ARGV with unpack(ARGV, i, j): no per-output Lua table,
-- which is most of this script's cost beside the XADDs themselves.
--
-- KEYS[1] input stream   KEYS[2] output stream
-- ARGV[1] group   ARGV[2] MAXLEN for the output ('' = no trim)   ARGV[3] '~' or '='
-- ARGV[4] n ids, then the n ids; then m outputs, each as k (field count x 2) then k values.
local n = tonumber(ARGV[4])
local i = 5 + n
local m = tonumber(ARGV[i]); i = i + 1
local trim = ARGV[2] ~= ''
for _ = 1, m do
  local k = tonumber(ARGV[i]); i = i + 1
  if trim then
    redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], ARGV[2], '*', unpack(ARGV, i, i + k - 1))
  else
    redis.call('XADD', KEYS[2], '*', unpack(ARGV, i, i + k - 1))
  end
  i = i + k
end
if n > 0 then redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 5, 4 + n)) end
return m
