-- GCRA on the Redis server's clock (staunch-redis).
--
-- KEYS[1]  the limiter's key for one caller key
-- ARGV[1]  emission interval T, whole microseconds (>= 1)
-- ARGV[2]  burst span, burst * T microseconds
-- ARGV[3]  cost of this call, in units of T
--
-- The value is the theoretical arrival time (TAT) in integer microseconds
-- since the Unix epoch, by the server's TIME. Microseconds keep every value
-- below 2^53, so Lua's doubles hold them exactly.
--
-- Returns {admitted (1/0), wait in microseconds, rebuilt (1/0), server now
-- in microseconds since the Unix epoch}.
local key = KEYS[1]
local emission = tonumber(ARGV[1])
local span = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local rebuilt = 0
local tat
local raw = redis.pcall('GET', key)
if type(raw) == 'table' and raw.err then
  -- Wrong type (someone stored a list or a hash here): start over, full.
  redis.call('DEL', key)
  tat = now + span
  rebuilt = 1
elseif not raw then
  -- No key: never used, or idle past its TTL, which means the same.
  tat = now
else
  tat = tonumber(raw)
  if tat == nil or tat ~= math.floor(tat) or tat < 0 then
    -- Not a TAT: rebuild as if the burst had just been spent.
    tat = now + span
    rebuilt = 1
  elseif tat > now + span then
    -- Further ahead than any admission can leave it: corrupt (or written
    -- with a larger burst). Clamp to the most this limiter can mean.
    tat = now + span
    rebuilt = 1
  end
end

local new_tat = math.max(tat, now) + emission * cost
local admit_at = new_tat - span
if admit_at <= now then
  redis.call('SET', key, string.format('%d', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
  return {1, 0, rebuilt, now}
end
if rebuilt == 1 then
  redis.call('SET', key, string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1)
end
return {0, admit_at - now, rebuilt, now}
