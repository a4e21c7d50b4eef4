-- KEYS: peers, seen, seeders, dl, torrents, totals
-- (torrents and totals are the swarm's bucket: the same slot on a cluster)
-- ARGV: peer id, packed peer, seeder (1/0), event, now, cutoff, numwant, hex info-hash,
--       max torrents, max peers, torrents and peers in the other buckets (as last read)
-- Returns {complete, incomplete, downloaded, {packed peers...}, refused, bucket torrents,
-- bucket peers}: refused is 0, or 1 when a new swarm would pass max torrents, 2 when a new peer
-- would pass max peers (nothing is written); the last two are the bucket's counts after.
local peers, seen, seeders, dl, torrents, totals = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, rec, seeder, event = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4]
local now, cutoff, numwant, hex = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local max_torrents, max_peers = tonumber(ARGV[9]), tonumber(ARGV[10])
local elsewhere_torrents, elsewhere_peers = tonumber(ARGV[11]), tonumber(ARGV[12])

local function bucket()
  local held = redis.call('HMGET', totals, 'seeders', 'leechers')
  return redis.call('ZCARD', torrents), tonumber(held[1] or '0') + tonumber(held[2] or '0')
end

expire(peers, seen, seeders, totals, cutoff)
local known = redis.call('ZSCORE', seen, id)
if event ~= 'stopped' and not known then
  -- The bounds: a swarm with no peer left counts as new (it is dropped below if refused).
  local new_swarm = redis.call('ZCARD', seen) == 0
  local others, held_peers = bucket()
  if redis.call('ZSCORE', torrents, hex) then others = others - 1 end
  others, held_peers = others + elsewhere_torrents, held_peers + elsewhere_peers
  local refused = 0
  if new_swarm and others >= max_torrents then
    refused = 1
  elseif held_peers >= max_peers then
    refused = 2
  end
  if refused > 0 then
    drop_if_empty(peers, seen, seeders, dl, torrents, totals, hex)
    local bt, bp = bucket()
    return {0, 0, 0, {}, refused, bt, bp}
  end
end
local was_seeder = false
if known then
  was_seeder = redis.call('SISMEMBER', seeders, id) == 1
end
if event == 'stopped' then
  if known then
    redis.call('HDEL', peers, id)
    redis.call('ZREM', seen, id)
    redis.call('SREM', seeders, id)
    redis.call('HINCRBY', totals, was_seeder and 'seeders' or 'leechers', -1)
  end
else
  if event == 'completed' and not was_seeder then
    redis.call('INCR', dl)
    redis.call('HINCRBY', totals, 'completed', 1)
  end
  redis.call('HSET', peers, id, rec)
  redis.call('ZADD', seen, now, id)
  if not known then
    redis.call('HINCRBY', totals, seeder and 'seeders' or 'leechers', 1)
    if seeder then redis.call('SADD', seeders, id) end
  elseif seeder ~= was_seeder then
    if seeder then
      redis.call('SADD', seeders, id)
      redis.call('HINCRBY', totals, 'seeders', 1)
      redis.call('HINCRBY', totals, 'leechers', -1)
    else
      redis.call('SREM', seeders, id)
      redis.call('HINCRBY', totals, 'seeders', -1)
      redis.call('HINCRBY', totals, 'leechers', 1)
    end
  end
end
if drop_if_empty(peers, seen, seeders, dl, torrents, totals, hex) then
  local bt, bp = bucket()
  return {0, 0, 0, {}, 0, bt, bp}
end
redis.call('ZADD', torrents, now, hex)
local total = redis.call('ZCARD', seen)
local complete = redis.call('SCARD', seeders)
local out = {}
if numwant > 0 then
  -- A positive count gives distinct fields; one extra in case the asker is drawn.
  local sample = redis.call('HRANDFIELD', peers, numwant + 1, 'WITHVALUES')
  for i = 1, #sample, 2 do
    if sample[i] ~= id and #out < numwant then
      out[#out + 1] = sample[i + 1]
    end
  end
end
local bt, bp = bucket()
return {complete, total - complete, tonumber(redis.call('GET', dl) or '0'), out, 0, bt, bp}
