#!/usr/bin/env bash
# Tracker benchmark: pixtorrent-tracker (memory store, Redis store, then Redis Cluster store) against
# Debian's opentracker, in one run, reported as ratios (the cluster also against single Redis). Load is wrk: HTTP announces for random info-hashes from a
# whitelisted pool, each by a new random peer id. Then memory: each tracker, fresh, is filled with
# 100,000 peers in 10,000 swarms and its resident memory read (and Redis's own, for the Redis store).
# The cluster is 3 primaries and 3 replicas (`redis-server --cluster-enabled yes`) on 127.0.0.1.
#
# Usage: scripts/bench-tracker.sh [--duration SECS] [--connections N] [--rounds N] [--quick]
#                                 [--kinds LIST] [--modes LIST] [--no-memory-fill]
#   --duration SECS   wrk run per tracker and round (default 10)
#   --connections N   wrk connections (default 64; 2 wrk threads)
#   --rounds N        rounds over the trackers (default 3); the table shows medians
#   --quick           smoke run: --duration 3 --rounds 1, and 10,000 peers in 1,000 swarms
#   --kinds LIST      trackers to run, comma-separated, in this order within each round (default
#                     memory,redis,cluster,opentracker; e.g. memory,opentracker for the memory store alone)
#   --modes LIST      keepalive,close (default both)
#   --no-memory-fill  skip the resident-memory part
# Environment: PIXTORRENT_TRACKER_BIN skips `cargo build --release` and uses that binary.
#
# All the trackers get the same whitelist (opentracker in Debian is built whitelist-only) and run
# on 127.0.0.1 on this machine's cores, shared with wrk. Two modes: keep-alive connections, and a
# new connection per announce (`Connection: close`, what most clients do; opentracker closes every
# connection after its reply anyway). Requests answered with a failure or a non-200, and connect,
# write and timeout errors are counted and shown; a run with any is marked. (wrk's read errors are
# left out: they are the server closing the connection after a reply.)
#
# On a machine loaded by other work the ratios flatter pixtorrent-tracker: its runtime's worker
# threads win a larger share of the contended cores than single-threaded opentracker does (here,
# with other builds running, the close-mode ratio read 1.0-1.3 for a tracker that needs 25% more
# CPU per announce than opentracker). Compare on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

DURATION=10
CONNS=64
ROUNDS=3
FILL_PEERS=100000
FILL_SWARMS=10000
POOL=10000
KINDS=(memory redis cluster opentracker)
MODES=(keepalive close)
FILL=1
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --duration) DURATION=$2; shift ;;
    --connections) CONNS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --quick) DURATION=3; ROUNDS=1; FILL_PEERS=10000; FILL_SWARMS=1000 ;;
    --kinds) IFS=, read -r -a KINDS <<<"$2"; shift ;;
    --modes) IFS=, read -r -a MODES <<<"$2"; shift ;;
    --no-memory-fill) FILL=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

PACKAGES=(wrk opentracker redis-server redis-tools python3)
ensure_packages "${PACKAGES[@]}"
if [ -n "${PIXTORRENT_TRACKER_BIN:-}" ]; then
  TRACKER=$(realpath "$PIXTORRENT_TRACKER_BIN")
else
  cargo build --release --quiet --bin pixtorrent-tracker
  TRACKER=$(realpath "${CARGO_TARGET_DIR:-target}/release/pixtorrent-tracker")
fi

WORK=$(mktemp -d /tmp/pixtorrent-bench-tracker.XXXXXX)
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
  local i
  for ((i = 0; i < 100; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

python3 scripts/bench/tracker_pool.py "$POOL" "$WORK/whitelist" "$WORK/pool.lua"
mkdir -p "$WORK/ot" && cp "$WORK/whitelist" "$WORK/ot/whitelist" && chmod 755 "$WORK/ot" && chmod 644 "$WORK/ot/whitelist"

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
wait_port "$REDIS_PORT"

# The cluster: six nodes whose ports and bus ports (port + 10000) are free.
CLUSTER_PORTS=()
CLUSTER_PIDS=()
mkdir -p "$WORK/cluster"
while ((${#CLUSTER_PORTS[@]} < 6)); do
  p=$(free_port)
  if ((p < 55000)) && ! port_open $((p + 10000)) && [[ " ${CLUSTER_PORTS[*]} " != *" $p "* ]]; then
    CLUSTER_PORTS+=("$p")
  fi
done
for p in "${CLUSTER_PORTS[@]}"; do
  redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-node-timeout 2000 \
    --cluster-config-file "$WORK/cluster/nodes-$p.conf" --dir "$WORK/cluster" \
    --repl-diskless-sync-delay 0 --save "" --appendonly no >"$WORK/cluster/$p.log" 2>&1 &
  PIDS+=("$!")
  CLUSTER_PIDS+=("$!")
  wait_port "$p"
done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}") --cluster-replicas 1 \
  --cluster-yes >"$WORK/cluster/create.log" 2>&1
for ((i = 0; i < 100; i++)); do
  redis-cli -p "${CLUSTER_PORTS[0]}" CLUSTER INFO | grep -q '^cluster_state:ok' && break
  sleep 0.2
done
CLUSTER_URLS=$(printf 'redis://127.0.0.1:%s/,' "${CLUSTER_PORTS[@]}")
CLUSTER_URLS=${CLUSTER_URLS%,}

# start_tracker KIND: starts a fresh tracker of that kind; sets PORT and PID.
start_tracker() {
  PORT=$(free_port)
  case $1 in
    memory) "$TRACKER" --listen "127.0.0.1:$PORT" --whitelist "$WORK/whitelist" >"$WORK/$1.log" 2>&1 & ;;
    redis)
      redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
      "$TRACKER" --listen "127.0.0.1:$PORT" --whitelist "$WORK/whitelist" \
        --redis "redis://127.0.0.1:$REDIS_PORT/" >"$WORK/$1.log" 2>&1 & ;;
    cluster)
      for p in "${CLUSTER_PORTS[@]}"; do redis-cli -p "$p" FLUSHALL >/dev/null 2>&1 || true; done
      "$TRACKER" --listen "127.0.0.1:$PORT" --whitelist "$WORK/whitelist" \
        --redis-cluster "$CLUSTER_URLS" >"$WORK/$1.log" 2>&1 & ;;
    opentracker) opentracker -i 127.0.0.1 -p "$PORT" -P "$PORT" -d "$WORK/ot" -w /whitelist >"$WORK/$1.log" 2>&1 & ;;
  esac
  PID=$!
  PIDS+=("$PID")
  wait_port "$PORT"
}
stop_tracker() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }

for k in "${KINDS[@]}"; do
  case $k in memory | redis | cluster | opentracker) ;; *) echo "unknown tracker kind: $k" >&2; exit 2 ;; esac
done
for m in "${MODES[@]}"; do
  case $m in keepalive | close) ;; *) echo "unknown mode: $m" >&2; exit 2 ;; esac
done
RESULTS=$WORK/results.tsv
echo "pixtorrent-tracker $("$TRACKER" --version | awk '{ print $2 }'), opentracker (Debian), $(redis-server --version | awk '{ print $3 }'), wrk 2 threads x $CONNS connections, ${DURATION}s per run, $(nproc) cores"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
for mode in "${MODES[@]}"; do
echo "== announces per second, $mode (HTTP, random whitelisted info-hash of $POOL, new random peer id each) =="
: >"$RESULTS"
for ((round = 1; round <= ROUNDS; round++)); do
  for kind in "${KINDS[@]}"; do
    start_tracker "$kind"
    line=$(CONN_CLOSE=$([ "$mode" = close ] && echo 1 || echo 0) POOL_LUA="$WORK/pool.lua" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s scripts/bench/tracker_wrk.lua \
      "http://127.0.0.1:$PORT" 2>&1 | grep '^RESULT' || true)
    rss=$(rss_mb "$PID")
    stop_tracker
    [ -n "$line" ] || line="RESULT rps=0 requests=0 errors=-1 failures=-1 p50_ms=0 p99_ms=0"
    read -r rps req err fail p50 p99 < <(echo "$line" | sed 's/RESULT //; s/[a-z0-9_]*=//g')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$kind" "$rps" "$req" "$err" "$fail" "$p50" "$p99" >>"$RESULTS"
    printf '  round %d %-12s %8s announces/s  (requests %s, errors %s, failure replies %s, p50 %s ms, p99 %s ms, RSS after %s MB)\n' \
      "$round" "$kind" "$rps" "$req" "$err" "$fail" "$p50" "$p99" "$rss"
  done
done
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
med = {}
for kind in ("memory", "redis", "cluster", "opentracker"):
    v = [float(r[2]) for r in rows if r[1] == kind]
    bad = [r for r in rows if r[1] == kind and (r[4] != "0" or r[5] != "0")]
    if not v:
        continue
    med[kind] = statistics.median(v)
    print(f"  median {kind:12s} {med[kind]:9.0f} announces/s" + ("   (some runs had errors or failure replies)" if bad else ""))
ot = med.get("opentracker") or float("nan")
# Each round runs the trackers back to back, so its own ratio sees the same machine load.
for kind in ("memory", "redis", "cluster"):
    per = [float(m[2]) / float(o[2]) for m in rows for o in rows
           if m[1] == kind and o[1] == "opentracker" and m[0] == o[0] and float(o[2]) > 0]
    if per:
        print(f"  {kind} / opentracker per round: " + " ".join(f"{r:.2f}" for r in per))
if "memory" in med:
    print(f"  memory store / opentracker: {med['memory'] / ot:.2f}x   (goal >= 1.0)")
if "redis" in med:
    print(f"  redis store  / opentracker: {med['redis'] / ot:.2f}x   (goal >= 0.3)")
if "cluster" in med:
    print(f"  cluster      / opentracker: {med['cluster'] / ot:.2f}x")
    if med.get("redis"):
        print(f"  cluster      / redis store: {med['cluster'] / med['redis']:.2f}x")
PY
echo
done

[ "$FILL" = 1 ] || { echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"; exit 0; }
echo
echo "== resident memory with $FILL_PEERS peers in $FILL_SWARMS swarms =="
for kind in "${KINDS[@]}"; do
  start_tracker "$kind"
  base=$(rss_mb "$PID")
  filled=$(python3 scripts/bench/tracker_fill.py "127.0.0.1:$PORT" "$FILL_PEERS" "$FILL_SWARMS")
  sleep 1
  rss=$(rss_mb "$PID")
  extra=""
  if [ "$kind" = redis ]; then
    used=$(redis-cli -p "$REDIS_PORT" INFO memory | awk -F: '/^used_memory:/ { printf "%.1f", $2 / 1048576 }')
    extra="; redis-server RSS $(rss_mb "$REDIS_PID") MB, used_memory $used MB"
  elif [ "$kind" = cluster ]; then
    used=0
    rss_sum=0
    for i in "${!CLUSTER_PORTS[@]}"; do
      u=$(redis-cli -p "${CLUSTER_PORTS[$i]}" INFO memory | awk -F: '/^used_memory:/ { printf "%.1f", $2 / 1048576 }')
      used=$(awk -v a="$used" -v b="$u" 'BEGIN { printf "%.1f", a + b }')
      rss_sum=$(awk -v a="$rss_sum" -v b="$(rss_mb "${CLUSTER_PIDS[$i]}")" 'BEGIN { printf "%.1f", a + b }')
    done
    extra="; six cluster nodes: RSS $rss_sum MB, used_memory $used MB (replicas included)"
  fi
  printf '  %-12s RSS %6s MB (empty: %s MB)  %s%s\n' "$kind" "$rss" "$base" "$filled" "$extra"
  stop_tracker
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
