-- Shared by every script: drop a swarm's peers last seen before `cutoff` (at most 1000 per call;
-- the next call takes the rest), keeping the global totals exact.
local function expire(peers, seen, seeders, totals, cutoff)
  local old = redis.call('ZRANGEBYSCORE', seen, '-inf', '(' .. cutoff, 'LIMIT', 0, 1000)
  for _, id in ipairs(old) do
    redis.call('HDEL', peers, id)
    redis.call('ZREM', seen, id)
    if redis.call('SREM', seeders, id) == 1 then
      redis.call('HINCRBY', totals, 'seeders', -1)
    else
      redis.call('HINCRBY', totals, 'leechers', -1)
    end
  end
end

-- A swarm with no peer left is deleted, with its completed count (which leaves the totals too).
local function drop_if_empty(peers, seen, seeders, dl, torrents, totals, hex)
  if redis.call('ZCARD', seen) == 0 then
    local done = tonumber(redis.call('GET', dl) or '0')
    if done > 0 then
      redis.call('HINCRBY', totals, 'completed', -done)
    end
    redis.call('DEL', peers, seen, seeders, dl)
    redis.call('ZREM', torrents, hex)
    return true
  end
  return false
end
