-- Appends a message to its channel's history, trims the history, publishes the message with
-- its position. ARGV: redis channel, data (JSON text), max length (0: none), max age ms (0:
-- none), the publish command (PUBLISH, or SPUBLISH for sharded channels).
-- Returns {offset, epoch}; the pub/sub payload is "\30<epoch>\30<offset>\30<data>".
local maxlen, age = tonumber(ARGV[3]), tonumber(ARGV[4])
local epoch = current_epoch(true)
local id = redis.call('XADD', stream, '*', 'd', ARGV[2])
trim_age(age)
if maxlen > 0 then
  local n = redis.call('XLEN', stream)
  if n > maxlen then
    local over = redis.call('XRANGE', stream, '-', '+', 'COUNT', n - maxlen)
    redis.call('XTRIM', stream, 'MAXLEN', maxlen)
    redis.call('HSET', meta, 'cut', over[#over][1])
  end
end
redis.call('HSET', meta, 'top', id)
redis.call(ARGV[5], ARGV[1], '\30' .. epoch .. '\30' .. id .. '\30' .. ARGV[2])
return {id, epoch}
