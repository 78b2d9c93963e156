-- Sends dead-lettered entries back to their source stream: each one's own fields (without the
-- dead:* fields consumer_group put in front of them) are added to the source under a new id,
-- and the entry leaves the dead-letter stream, in one step. Entries without "dead:id" among
-- those leading fields (not written by a consumer_group) are left where they are.
--
-- KEYS[1] dead-letter stream   KEYS[2] source stream
-- ARGV[1] first id (XRANGE bound, "(ID" exclusive)   ARGV[2] last id   ARGV[3] count
-- Returns {'no_source'} when the source is not a stream (nothing moved), else
-- {'ok', last id looked at ('' if none), skipped, new id in the source, ...}.
if redis.call('TYPE', KEYS[2])['ok'] ~= 'stream' then return {'no_source'} end
local dead_fields = {['dead:id'] = true, ['dead:group'] = true, ['dead:deliveries'] = true,
                     ['dead:reason'] = true}
local out = {'ok', '', 0}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])) do
  local fields = entry[2]
  out[2] = entry[1]
  local own, was_dead = 1, false
  while own < #fields and dead_fields[fields[own]] do
    if fields[own] == 'dead:id' then was_dead = true end
    own = own + 2
  end
  if was_dead and own < #fields then
    local rest = {}
    for i = own, #fields do rest[#rest + 1] = fields[i] end
    out[#out + 1] = redis.call('XADD', KEYS[2], '*', unpack(rest))
    redis.call('XDEL', KEYS[1], entry[1])
  else
    out[3] = out[3] + 1
  end
end
return out
