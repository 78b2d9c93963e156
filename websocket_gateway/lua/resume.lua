-- What a subscriber missed. ARGV: offset ('' for none), max age ms, most entries to return.
-- Returns {newest} without an offset; {newest, 'gap'} when the history no longer reaches back
-- to the offset (trimmed past it, or reset below it); else {newest, 'ok', entries}.
trim_age(tonumber(ARGV[2]))
local top = newest()
local from = ARGV[1]
if from == '' then return {top} end
local cut = redis.call('GET', trimmed)
if (cut and older(from, cut)) or older(top, from) then return {top, 'gap'} end
local limit = tonumber(ARGV[3])
local entries = redis.call('XRANGE', stream, '(' .. from, '+', 'COUNT', limit + 1)
if #entries > limit then return {top, 'gap'} end
return {top, 'ok', entries}
