-- KEYS: torrents, totals (one bucket).  ARGV: swarm key prefix (`P:{`), cutoff, batch.
-- Torrents nobody announced to since `cutoff` hold only expired peers: clear up to `batch` of them.
-- Their keys are `P:{H}:kind`, in the bucket's slot. Returns {peers gone, torrents looked at}
-- (fewer torrents than `batch`: nothing stale is left).
local torrents, totals = KEYS[1], KEYS[2]
local prefix, cutoff, batch = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local gone = 0
local stale = redis.call('ZRANGEBYSCORE', torrents, '-inf', '(' .. cutoff, 'LIMIT', 0, batch)
for _, hex in ipairs(stale) do
  local peers, seen = prefix .. hex .. '}:peers', prefix .. hex .. '}:seen'
  local seeders, dl = prefix .. hex .. '}:seeders', prefix .. hex .. '}:dl'
  gone = gone + redis.call('ZCOUNT', seen, '-inf', '(' .. cutoff)
  expire(peers, seen, seeders, totals, cutoff)
  drop_if_empty(peers, seen, seeders, dl, torrents, totals, hex)
end
return {gone, #stale}
