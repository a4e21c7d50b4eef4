-- wrk script for the tracker benchmark: every request is an announce for a random info-hash from
-- the pool (loaded from POOL_LUA) by a random new peer id, as a leecher or (1 in 4) a seeder, asking
-- for the default 50 peers in compact form. Replies that carry "failure reason" are counted.
-- With CONN_CLOSE=1 every request says `Connection: close` (a new TCP connection per announce, as
-- most clients do); wrk then counts each server-side close as a read error, which is expected.
local pool_file = os.getenv("POOL_LUA")
dofile(pool_file)
failures = 0 -- global: done() reads it from each thread
local close = os.getenv("CONN_CLOSE") == "1"
local threads = {}

local function peer_id()
  local t = {}
  for i = 1, 20 do
    t[i] = string.format("%%%02X", math.random(0, 255))
  end
  return table.concat(t)
end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + math.random(1, 1000000))
end

function request()
  local h = pool[math.random(1, #pool)]
  local left = (math.random(1, 4) == 1) and "0" or "1000"
  local path = "/announce?info_hash=" .. h .. "&peer_id=" .. peer_id() .. "&port=" .. math.random(1024, 65535)
    .. "&uploaded=0&downloaded=0&left=" .. left .. "&compact=1&event=started"
  if close then
    return wrk.format("GET", path, { ["Connection"] = "close" })
  end
  return wrk.format("GET", path)
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, "failure reason", 1, true) then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local f = 0
  for _, t in ipairs(threads) do
    f = f + (t:get("failures") or 0)
  end
  io.write(string.format("RESULT rps=%.0f requests=%d errors=%d failures=%d p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests / (summary.duration / 1e6), summary.requests,
    summary.errors.connect + summary.errors.write + summary.errors.status + summary.errors.timeout,
    f, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
