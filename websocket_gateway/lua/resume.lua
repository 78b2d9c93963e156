-- What a subscriber missed. ARGV: offset ('' for none), its epoch, max age ms, most entries
-- to return. Returns {epoch, newest} without an offset; {epoch, newest, 'gap'} when the
-- position is of another epoch or the history no longer reaches back to it (trimmed past it,
-- or it is newer than the history); else {epoch, newest, 'ok', entries}. Offset 0-0 without
-- an epoch asks for the whole history: the start belongs to every epoch, and it is a gap
-- only when the current epoch did not start empty or was trimmed.
trim_age(tonumber(ARGV[3]))
local epoch = current_epoch(true)
local m = redis.call('HMGET', meta, 'top', 'cut')
local top, cut = m[1], m[2]
local from = ARGV[1]
if from == '' then return {epoch, top} end
local from_start = from == '0-0' and ARGV[2] == ''
if (ARGV[2] ~= epoch and not from_start) or older(from, cut) or older(top, from) then return {epoch, top, 'gap'} end
local limit = tonumber(ARGV[4])
local entries = redis.call('XRANGE', stream, '(' .. from, '+', 'COUNT', limit + 1)
if #entries > limit then return {epoch, top, 'gap'} end
return {epoch, top, 'ok', entries}
