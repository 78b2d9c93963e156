-- Appends partitions to a partitioned queue's list of partitions (its source of truth), or
-- creates the list, only if the list still has the length the caller read: two processes
-- creating or growing it at once cannot both write. A plain queue of the same name (one that
-- was ever enqueued into) is refused.
--
-- KEYS[1] the logical queue's prefix
-- ARGV[1] the list's length the caller read (0: create), then the names to append
-- Returns {'added' | 'changed' | 'plain', the names stored now...}
local k = keys_of(KEYS[1])
local had = tonumber(ARGV[1])
local stored = redis.call('LRANGE', k.partitions, 0, -1)
if #stored ~= had then
  table.insert(stored, 1, 'changed')
  return stored
end
if had == 0 and redis.call('EXISTS', k.id) == 1 then return {'plain'} end
if #ARGV > 1 then redis.call('RPUSH', k.partitions, unpack(ARGV, 2)) end
for i = 2, #ARGV do stored[#stored + 1] = ARGV[i] end
table.insert(stored, 1, 'added')
return stored
