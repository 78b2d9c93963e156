-- Points a tag of a model at one of its versions, if that version exists (checked in the same
-- step, so a tag never points at a version deleted meanwhile).
--
-- KEYS[1] versions zset   KEYS[2] tags hash   ARGV[1] tag   ARGV[2] version
-- Returns 1, or 0 if there is no such version.
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
