-- KEYS: torrents, totals.  ARGV: prefix, cutoff, hex info-hashes...
-- Returns complete, incomplete, downloaded for each hash, flattened.
local torrents, totals = KEYS[1], KEYS[2]
local prefix, cutoff = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
  local hex = ARGV[i]
  local peers, seen = prefix .. ':peers:' .. hex, prefix .. ':seen:' .. hex
  local seeders, dl = prefix .. ':seeders:' .. hex, prefix .. ':dl:' .. hex
  expire(peers, seen, seeders, totals, cutoff)
  if drop_if_empty(peers, seen, seeders, dl, torrents, totals, hex) then
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = 0
  else
    local total, complete = redis.call('ZCARD', seen), redis.call('SCARD', seeders)
    out[#out + 1] = complete
    out[#out + 1] = total - complete
    out[#out + 1] = tonumber(redis.call('GET', dl) or '0')
  end
end
return out
