-- A running job's progress: kept as the job's last progress while its record exists (never
-- for a job gone meanwhile, so nothing is left behind), and published to the queue's events.
-- Cleared when the job completes, is removed, runs again from the start (requeue.lua) or is
-- handed back.
--
-- KEYS[1] queue prefix   ARGV[1] id   ARGV[2] text
local k = keys_of(KEYS[1])
local id = ARGV[1]
if redis.call('HEXISTS', k.jobs, id) == 1 then redis.call('HSET', k.progress, id, ARGV[2]) end
publish(k, 'progress ' .. id .. ' ' .. ARGV[2])
journal(k, 'progress', {id}, ARGV[2])
return 1
