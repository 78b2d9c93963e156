-- The last command of the batcher's MULTI/EXEC commit, after the XADDs of the batch's outputs.
-- A command failing inside EXEC does not stop the ones after it, so this checks that the
-- outputs can have been written (the output key is a stream) before it acks the inputs.
-- KEYS[1] input stream  KEYS[2] output stream  ARGV[1] group  ARGV[2] outputs  ARGV[3..] ids
if tonumber(ARGV[2]) > 0 and redis.call('TYPE', KEYS[2]).ok ~= 'stream' then
  return redis.error_reply('WRONGTYPE the output key ' .. KEYS[2] ..
    ' holds no stream: outputs not written, inputs left pending')
end
local acked = 0
for i = 3, #ARGV, 1000 do -- unpack() is limited to a few thousand values
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return acked
