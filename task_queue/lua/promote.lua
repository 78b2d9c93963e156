-- The scheduler's move of delayed jobs whose time has come to the ready states.
--
-- KEYS[1] queue prefix   ARGV[1] limit
-- Returns {promoted, next due ms (-1: none)}.
local k = keys_of(KEYS[1])
local now = now_ms()
local promoted = promote_due(k, now, tonumber(ARGV[1]))
return {promoted, next_due(k), now}
