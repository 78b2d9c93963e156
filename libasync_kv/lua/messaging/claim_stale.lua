-- Takes over entries another consumer left pending longer than the idle time (it died or hung).
-- An entry delivered more than max_deliveries times goes to the dead-letter stream instead,
-- with where it came from and why, and is acked: a poison entry cannot loop forever.
-- XAUTOCLAIM claims; XPENDING tells the delivery count, which XAUTOCLAIM does not return.
--
-- KEYS[1] stream   KEYS[2] dead-letter stream
-- ARGV[1] group    ARGV[2] consumer   ARGV[3] min idle ms   ARGV[4] count   ARGV[5] max deliveries
-- Returns { {id, {field, value, ...}, deliveries}, ... } of the entries now ours to process.
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local max_deliveries = tonumber(ARGV[5])
local out = {}
for _, entry in ipairs(claimed[2]) do
  local id = entry[1]
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  local deliveries = 1
  if pending[1] then deliveries = tonumber(pending[1][4]) end
  if deliveries > max_deliveries then
    local fields = {'dead:id', id, 'dead:group', ARGV[1], 'dead:deliveries', tostring(deliveries),
                    'dead:reason', 'delivered more than ' .. ARGV[5] .. ' times'}
    for i = 1, #entry[2] do fields[#fields + 1] = entry[2][i] end
    redis.call('XADD', KEYS[2], '*', unpack(fields))
    redis.call('XACK', KEYS[1], ARGV[1], id)
  else
    out[#out + 1] = {id, entry[2], deliveries}
  end
end
return out
