-- Claims one run of a periodic job: moves its next run time from the one the caller saw to
-- the following one. Only one caller wins a given run, however many schedulers overlap.
--
-- KEYS[1] queue prefix   ARGV[1] name   ARGV[2] run time seen (ms)   ARGV[3] next run (ms)
-- Returns 1 if this caller fires the run.
local key = KEYS[1] .. 'periodic:next'
if redis.call('HGET', key, ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', key, ARGV[1], ARGV[3])
return 1
