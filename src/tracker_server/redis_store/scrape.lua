-- KEYS: peers, seen, seeders, dl, torrents, totals (one swarm and its bucket: one slot).
-- ARGV: cutoff, hex info-hash.  Returns {complete, incomplete, downloaded}.
local peers, seen, seeders, dl, torrents, totals = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local cutoff, hex = tonumber(ARGV[1]), ARGV[2]
expire(peers, seen, seeders, totals, cutoff)
if drop_if_empty(peers, seen, seeders, dl, torrents, totals, hex) then
  return {0, 0, 0}
end
local total, complete = redis.call('ZCARD', seen), redis.call('SCARD', seeders)
return {complete, total - complete, tonumber(redis.call('GET', dl) or '0')}
