#!/usr/bin/env bash
# Swarm benchmark (issue 17): real peers in a network namespace of the script's own, one address each,
# a mix of python3-libtorrent seeders and leechers, aria2c and Transmission.
#   swarm  pixtorrent joins the swarm as a leecher and is timed; then, in a fresh swarm of the same mix,
#          a python3-libtorrent leecher does the same. Reported: wall time, CPU, bytes per kind of source.
#   seed   pixtorrent seeds alone to --leechers libtorrent leechers started at once; then a libtorrent
#          seeder does the same. Reported: aggregate upload rate, seeder CPU, the spread of the
#          leechers' finish times (the fairness of the seeder's choker).
#
# Usage: scripts/bench-swarm.sh [--quick] [--size-mb N] [--runs N] [--peers N] [--leechers N]
#                               [--timeout SECS] [--warmup SECS] [--seed-limit KIB] [--phases LIST]
#                               [--clients LIST]
#   --size-mb N       payload size, the big file's MiB (default 256); cached under $BENCH_DIR (the
#                     same payload and info dict as scripts/bench-download.sh)
#   --runs N          runs per client and phase (default 3), the clients' order alternating (A B,
#                     B A, ...), a fresh swarm for each; the tables show medians
#   --peers N         peers in the swarm phase (default 40): N/5 libtorrent seeders, 2 aria2c and
#                     2 Transmission leechers (1 and 1 below 20 peers), libtorrent leechers for the rest
#   --leechers N      libtorrent leechers in the seed phase (default 30)
#   --quick           smoke run of the script itself: --size-mb 64 --runs 1 --peers 12 --leechers 10
#                     --warmup 5
#   --timeout SECS    bound on each timed download and on each seed-phase run (default 600)
#   --warmup SECS     how long the swarm runs before the timed leecher joins (default 20)
#   --seed-limit KIB  upload limit of each swarm seeder, KiB/s (default 4096; 0: none). The swarm's
#                     leechers are limited to 256..2048 KiB/s down (spread evenly), aria2c and
#                     Transmission to 1 MiB/s down, so they stay partial while the timed leecher runs
#   --phases LIST     comma-separated subset of swarm,seed (default: both)
#   --clients LIST    comma-separated subset of pixtorrent,libtorrent (default: both), in both phases
# Environment: BENCH_DIR (default /tmp/pixtorrent-bench) caches the payload and keeps the last run's
# logs in $BENCH_DIR/last-logs; PIXTORRENT_BIN skips `cargo build --release` and uses that binary.
#
# The network: a namespace joined to the host by a veth pair, 10.77.0.1/16 on the host side, 10.77.0.2
# and 10.77.1.1..N inside; the namespace has no other route, so its peers reach nothing but each other
# and the host side. opentracker (Debian's, whitelist-only, a fresh one per swarm) listens on
# 10.77.0.1:6969; the timed leecher or the seeder under test runs on the host side at 10.77.0.1.
# Every libtorrent peer of the namespace lives in one of two python processes (scripts/bench/
# swarm_peers.py: one libtorrent session per peer, each bound to its own address); aria2c and
# transmission-daemon run one process per peer, bound with --interface / bind-address-ipv4. DHT, LSD,
# UPnP, NAT-PMP and PEX are off where the client has the switch. Everything started is stopped by its
# pid at exit, then the namespace and the veth pair are deleted. Root needed.
#
# Each swarm is fresh (new tracker, new peers, empty leechers): seeders hash-check the data, then the
# leechers start together, then --warmup seconds pass, then the timed leecher starts. The timed
# download: wall time from start to exit with all files verified, plus a `sync` at once (as in
# bench-download.sh), CPU and peak RSS from /usr/bin/time, and every file compared with the source.
# Bytes per source: pixtorrent's summary lines `peer IP:PORT (CLIENT): N bytes`, lt_leech.py's
# `PEER IP:PORT blocks=N`, each address mapped to the kind of peer the script put there.
# Seed phase: the seeder hash-checks the data, then all leechers' torrents are added at once; the run
# ends when the last leecher is done. The swarm's and the seed phase's leechers keep their data on
# /dev/shm when it fits in half the free memory (on $BENCH_DIR otherwise).
set -euo pipefail
# The DHT stays off: a demo or benchmark never reaches the public DHT routers.
export PIXTORRENT_NO_DHT=1 PIXTORRENT_FORBID_PUBLIC_DHT=1
cd "$(dirname "$0")/.."
source scripts/lib.sh

PY=/usr/bin/python3
HELPERS=scripts/bench
BENCH_DIR=${BENCH_DIR:-/tmp/pixtorrent-bench}
SIZE_MB=256
RUNS=3
PEERS=40
SEED_LEECHERS=30
RUN_TIMEOUT=600
WARMUP=20
SEED_LIMIT_KIB=4096
PHASES=(swarm seed)
CLIENTS=(pixtorrent libtorrent)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --size-mb) SIZE_MB=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --peers) PEERS=$2; shift ;;
    --leechers) SEED_LEECHERS=$2; shift ;;
    --quick) SIZE_MB=64 RUNS=1 PEERS=12 SEED_LEECHERS=10 WARMUP=5 ;;
    --timeout) RUN_TIMEOUT=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --seed-limit) SEED_LIMIT_KIB=$2; shift ;;
    --phases) IFS=, read -r -a PHASES <<<"$2"; shift ;;
    --clients) IFS=, read -r -a CLIENTS <<<"$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for p in "${PHASES[@]}"; do
  case $p in swarm | seed) ;; *) echo "unknown phase: $p" >&2; exit 2 ;; esac
done
for c in "${CLIENTS[@]}"; do
  case $c in pixtorrent | libtorrent) ;; *) echo "unknown client: $c" >&2; exit 2 ;; esac
done
if ((PEERS < 6 || PEERS > 250 || SEED_LEECHERS < 2 || SEED_LEECHERS > 250 || RUNS < 1 || RUNS > 20)); then
  echo "--peers must be 6..250, --leechers 2..250 and --runs 1..20" >&2
  exit 2
fi
has_phase() { [[ " ${PHASES[*]} " == *" $1 "* ]]; }
[ "$(id -u)" = 0 ] || { echo "root needed (network namespace)" >&2; exit 1; }
if ip -o -4 addr show | grep -q ' 10\.77\.'; then
  echo "10.77.0.0/16 is already on an interface here (another run of this script?)" >&2
  exit 1
fi

# The mix of the swarm phase.
N_SEEDERS=$((PEERS / 5))
if ((PEERS >= 20)); then N_ARIA=2 N_TR=2; else N_ARIA=1 N_TR=1; fi
N_LEECHERS=$((PEERS - N_SEEDERS - N_ARIA - N_TR))

PACKAGES=(opentracker mktorrent aria2 python3-libtorrent time transmission-daemon transmission-cli iproute2)
ensure_packages "${PACKAGES[@]}"
source scripts/bench/common.sh
source scripts/bench/leechers.sh # start_transmission, port_open_on
export XDG_STATE_HOME=$RUN_DIR/state
mkdir -p "$XDG_STATE_HOME"
# Some 40 libtorrent sessions in two processes: each has its sockets, files, epoll and pipes.
ulimit -n 65536 2>/dev/null || true

# --- the namespace ---------------------------------------------------------------------------------
NS=pxswarm$$
SW_HOST_IF=pxsw$$h
SW_NS_IF=pxsw$$n
HOST_IP=10.77.0.1
TRACKER_PORT=6969
SHM_DIR=""
swarm_netns_up() {
  local n=$1 i
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  ip link add "$SW_HOST_IF" type veth peer name "$SW_NS_IF" netns "$NS"
  ip addr add "$HOST_IP/16" dev "$SW_HOST_IF"
  ip link set "$SW_HOST_IF" up
  {
    echo "addr add 10.77.0.2/16 dev $SW_NS_IF"
    for ((i = 1; i <= n; i++)); do echo "addr add 10.77.1.$i/16 dev $SW_NS_IF"; done
    echo "link set $SW_NS_IF up"
  } | ip -n "$NS" -batch -
}
swarm_netns_down() {
  local pid
  # Whatever still runs in the namespace was started by this script.
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  ip link del "$SW_HOST_IF" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
}
trap 'cleanup; swarm_netns_down; [ -z "$SHM_DIR" ] || rm -rf "$SHM_DIR"' EXIT
NADDR=$PEERS
((SEED_LEECHERS > NADDR)) && NADDR=$SEED_LEECHERS
swarm_netns_up "$NADDR"
peer_ip() { echo "10.77.1.$1"; }

# Leechers' data: /dev/shm when the most that one phase's leechers can hold fits in half the free
# memory (the seeders read the payload in place).
n_store=$((N_LEECHERS + N_ARIA + N_TR))
((SEED_LEECHERS > n_store)) && n_store=$SEED_LEECHERS
need=$((n_store * (SIZE_MB + 1) * 1024))
avail=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
if ((need * 2 < avail)) && [ -d /dev/shm ]; then
  SHM_DIR=$(mktemp -d /dev/shm/pxswarm.XXXXXX)
  DATA_DIR=$SHM_DIR
else
  DATA_DIR=$RUN_DIR/peers
fi

LT_VERSION=$("$PY" -c 'import libtorrent; print(libtorrent.__version__)')
TR_VERSION=$(transmission-daemon --version 2>&1 | head -1)
ARIA_VERSION=$(aria2c --version | head -1 | awk '{ print $3 }')
echo "payload: $SRC, $NFILES files, $PAYLOAD_BYTES bytes, info-hash $INFOHASH"
echo "pixtorrent: $PIX; libtorrent $LT_VERSION; aria2c $ARIA_VERSION; $TR_VERSION; $(nproc) cores"
echo "namespace $NS: host side $HOST_IP ($SW_HOST_IF), peers at 10.77.1.1-$NADDR; tracker $HOST_IP:$TRACKER_PORT;"
echo "leechers' data in $DATA_DIR"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $LOAD_BEFORE (other work on this machine skews the numbers)"

# --- helpers ---------------------------------------------------------------------------------------

# wait_line LOG REGEX SECS PID: waits until a line of LOG matches REGEX (0), PID exits or an ERROR
# line shows up (1), or SECS pass (1).
wait_line() {
  local log=$1 re=$2 secs=$3 pid=$4 i
  for ((i = 0; i < secs * 10; i++)); do
    grep -qE "$re" "$log" 2>/dev/null && return 0
    grep -q '^ERROR' "$log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -qE "$re" "$log" 2>/dev/null
}

# start_tracker TAG: a fresh opentracker on HOST_IP:TRACKER_PORT (Debian's serves whitelisted
# info-hashes only; it chroots into -d, so the list's path is relative to it) and T_SWARM, the torrent
# announcing there. Sets TRACKER_PID.
start_tracker() {
  local tag=$1 dir=$RUN_DIR/opentracker-$1 i
  mkdir -p "$dir"
  chmod 755 "$dir"
  echo "$INFOHASH" >"$dir/wl.txt"
  chmod 644 "$dir/wl.txt"
  start "opentracker-$tag" opentracker -i "$HOST_IP" -p "$TRACKER_PORT" -P "$TRACKER_PORT" -d "$dir" -w /wl.txt
  TRACKER_PID=$LAST_PID
  for ((i = 0; i < 50; i++)); do port_open_on "$HOST_IP" "$TRACKER_PORT" && break; sleep 0.1; done
  if ! port_open_on "$HOST_IP" "$TRACKER_PORT"; then
    echo "opentracker did not start:" >&2
    cat "$LOGS/opentracker-$tag.log" >&2
    exit 1
  fi
  T_SWARM=$RUN_DIR/swarm.torrent
  "$PY" "$HELPERS/torrent_tool.py" reannounce "$PAYLOAD/base.torrent" "http://$HOST_IP:$TRACKER_PORT/announce" "$T_SWARM"
}

# run_order RUN: the clients in the order of that run: as given on odd runs, reversed on even ones.
run_order() {
  local i
  if (($1 % 2)); then
    echo "${CLIENTS[@]}"
  else
    for ((i = ${#CLIENTS[@]} - 1; i >= 0; i--)); do echo "${CLIENTS[i]}"; done
  fi
}

# --- phase 1: the swarm ----------------------------------------------------------------------------
SWARM_RESULTS=$RUN_DIR/swarm.tsv
SEED_RESULTS=$RUN_DIR/seed.tsv
: >"$SWARM_RESULTS"
: >"$SEED_RESULTS"
KINDS=$RUN_DIR/kinds.tsv
SWARM_PIDS=()

# swarm_up TAG: tracker, seeders (ready once checked), then the leechers all at once, aria2c and
# Transmission; returns once every libtorrent leecher has its tracker answer. Returns 1 on failure.
swarm_up() {
  local tag=$1 i k=1 ip lim args=() sp lp
  : >"$KINDS"
  SWARM_PIDS=()
  start_tracker "$tag"
  SWARM_PIDS+=("$TRACKER_PID")
  for ((i = 1; i <= N_SEEDERS; i++, k++)); do
    ip=$(peer_ip $k)
    args+=(--peer "seed$i,$ip:6881,0,$((SEED_LIMIT_KIB * 1024))")
    printf '%s\tseeder\n' "$ip" >>"$KINDS"
  done
  start "$tag-seeders" ip netns exec "$NS" "$PY" "$HELPERS/swarm_peers.py" --seed --torrent "$T_SWARM" \
    --dir "$PAYLOAD/data" "${args[@]}" --stats-secs 10 --max-secs $((RUN_TIMEOUT + 900)) --parent-pid $$
  sp=$LAST_PID
  SWARM_PIDS+=("$sp")
  if ! wait_line "$LOGS/$tag-seeders.log" '^ALLREADY' 300 "$sp"; then
    echo "  the seeders did not get ready:" >&2
    tail -5 "$LOGS/$tag-seeders.log" >&2
    return 1
  fi
  args=()
  for ((i = 1; i <= N_LEECHERS; i++, k++)); do
    ip=$(peer_ip $k)
    # 256 KiB/s .. 2 MiB/s down, spread evenly; upload unlimited.
    lim=$((256 * 1024 + (2048 - 256) * 1024 * (i - 1) / (N_LEECHERS > 1 ? N_LEECHERS - 1 : 1)))
    args+=(--peer "leech$i,$ip:6881,$lim,0")
    printf '%s\tleecher\n' "$ip" >>"$KINDS"
  done
  mkdir -p "$DATA_DIR/$tag"
  start "$tag-leechers" ip netns exec "$NS" "$PY" "$HELPERS/swarm_peers.py" --leech --torrent "$T_SWARM" \
    --dir "$DATA_DIR/$tag" "${args[@]}" --stats-secs 1 --max-secs $((RUN_TIMEOUT + 900)) --parent-pid $$
  lp=$LAST_PID
  SWARM_PIDS+=("$lp")
  for ((i = 1; i <= N_ARIA; i++, k++)); do
    ip=$(peer_ip $k)
    printf '%s\taria2c\n' "$ip" >>"$KINDS"
    mkdir -p "$DATA_DIR/$tag/aria2c$i"
    # --seed-ratio=0.0: keeps seeding once done, until stopped.
    start "$tag-aria2c$i" ip netns exec "$NS" aria2c --no-conf=true --interface="$ip" --listen-port=6881 \
      --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false \
      --seed-ratio=0.0 --max-overall-download-limit=1M --file-allocation=none --summary-interval=0 \
      --console-log-level=warn --allow-overwrite=true --auto-file-renaming=false --bt-save-metadata=false \
      --bt-tracker-connect-timeout=10 --bt-tracker-timeout=10 -d "$DATA_DIR/$tag/aria2c$i" "$T_SWARM"
    SWARM_PIDS+=("$LAST_PID")
  done
  for ((i = 1; i <= N_TR; i++, k++)); do
    ip=$(peer_ip $k)
    printf '%s\ttransmission\n' "$ip" >>"$KINDS"
    # leechers.sh's daemon, bound to this peer's address; then 1 MB/s down (kB = 1000 bytes there).
    NS_IP=$ip
    if ! start_transmission "$tag-transmission$i" "$T_SWARM" "$DATA_DIR/$tag/transmission$i"; then
      SWARM_PIDS+=("$LEECH_PID")
      echo "  transmission-daemon at $ip did not take the torrent:" >&2
      tail -5 "$LOGS/$tag-transmission$i.log" >&2
      return 1
    fi
    SWARM_PIDS+=("$LEECH_PID")
    transmission-remote "$ip:$TR_RPC_PORT" -d 1000 >>"$LOGS/$tag-transmission$i.log" 2>&1 || true
  done
  if ! wait_line "$LOGS/$tag-leechers.log" '^ALLREADY' 120 "$lp"; then
    echo "  the leechers did not get ready:" >&2
    tail -5 "$LOGS/$tag-leechers.log" >&2
    return 1
  fi
  SWARM_LEECH_LOG=$LOGS/$tag-leechers.log
}

# tr_state: each Transmission's progress, what it downloaded and uploaded, and its peers
# (`transmission-remote -i`), while it runs.
tr_state() {
  local i line out=""
  for ((i = 1; i <= N_TR; i++)); do
    line=$(transmission-remote "$(peer_ip $((N_SEEDERS + N_LEECHERS + N_ARIA + i))):$TR_RPC_PORT" -t all -i 2>/dev/null |
      sed -n 's/^ *Percent Done: *//p; s/^ *Downloaded: */down /p; s/^ *Uploaded: */up /p; s/^ *Peers: *//p' |
      paste -sd' ' - || true)
    out+="; transmission$i ${line:-?}"
  done
  echo "$out"
}

# swarm_state TAG: how far the libtorrent leechers (their latest STATS: mean progress) and each aria2c
# (its last progress line: have/size, connections, seeds; aria2c writes them out when it exits) got.
swarm_state() {
  local tag=$1 i line out
  line=$(grep '^STATS' "$LOGS/$tag-leechers.log" | tail -1 || true)
  out="libtorrent leechers $(grep -oP 'progress=\K[0-9.]+' <<<"$line" | awk '{ printf "%.0f%%", $1 * 100 }') on average"
  for ((i = 1; i <= N_ARIA; i++)); do
    line=$(grep -aoP '\[#\w+ \K\S+ CN:\d+ SD:\d+' "$LOGS/$tag-aria2c$i.log" | tail -1 || true)
    out+="; aria2c$i ${line:-?}"
  done
  echo "$out"
}

swarm_down() {
  stop_procs "${SWARM_PIDS[@]}"
  SWARM_PIDS=()
  rm -rf "${DATA_DIR:?}/$1"
}

# measure CLIENT RUN: a fresh swarm, --warmup seconds, then CLIENT's timed download from it.
measure() {
  local client=$1 run=$2 tag=swarm-$1-$2 dest=$RUN_DIR/dl-$1 log=$LOGS/swarm-$1-$2-leecher.log tf=$RUN_DIR/time.out
  local cmd=() rc=0 wall=0 user=0 sys=0 rss=0 cpu0 cpu1 swarm_cpu syncs sync0 src names stats
  echo
  echo "-- $client run $run/$RUNS: a fresh swarm of $PEERS peers, $WARMUP s of warm-up, then $client joins"
  if ! swarm_up "$tag"; then
    printf '%s\t%s\tFAILED\t0\t0\t0\t0\t0\t%s\t%s\n' "$client" "$run" "seeder=0/0,leecher=0/0,aria2c=0/0,transmission=0/0,other=0/0" \
      "swarm did not start" >>"$SWARM_RESULTS"
    swarm_down "$tag"
    return
  fi
  sleep "$WARMUP"
  stats=$(grep '^STATS' "$SWARM_LEECH_LOG" | tail -1 || true)
  echo "   swarm leechers before the join: $(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(progress|done|peers)=/) printf "%s ", $i }' <<<"$stats")" \
    "(progress: their mean; peers: connections summed)"
  mkdir -p "$dest"
  case $client in
    pixtorrent) cmd=("$PIX" -t "$T_SWARM" -o "$dest" --port 0 --bind "$HOST_IP") ;;
    libtorrent) cmd=("$PY" -X faulthandler "$HELPERS/lt_leech.py" --torrent "$T_SWARM" --dir "$dest"
      --listen "$HOST_IP:0" --max-secs "$RUN_TIMEOUT") ;;
  esac
  echo "command: ${cmd[*]}" >"$log"
  cpu0=$(cpu_of "${SWARM_PIDS[@]}")
  rm -f "$tf"
  timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%e %U %S %M' -o "$tf" "${cmd[@]}" >>"$log" 2>&1 &
  CUR_PID=$!
  wait "$CUR_PID" || rc=$?
  CUR_PID=""
  cpu1=$(cpu_of "${SWARM_PIDS[@]}")
  sync0=$(date +%s.%N)
  sync
  syncs=$(awk -v a="$sync0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  if [ -s "$tf" ]; then read -r wall user sys rss < <(tail -1 "$tf") || true; fi
  wall=$(awk -v w="$wall" -v s="$syncs" 'BEGIN { printf "%.2f", w + s }')
  run_status "$rc" "$dest"
  [ "$STATUS" = TIMEOUT ] && wall=$RUN_TIMEOUT
  swarm_cpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
  { read -r src; read -r names; } < <("$PY" "$HELPERS/swarm_report.py" sources "$KINDS" "$client" "$log")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$client" "$run" "$STATUS" "$wall" "$user" "$sys" "$rss" "$swarm_cpu" "$src" \
    "$NOTE" >>"$SWARM_RESULTS"
  if [ "$STATUS" = ok ]; then
    awk -v c="$client" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" -v b="$PAYLOAD_BYTES" -v sy="$syncs" -v sc="$swarm_cpu" \
      'BEGIN { printf "   %s: %.2f s (sync after exit %.2f s)  %.1f MB/s  CPU %.2f s  RSS %.0f MB  (swarm CPU %.2f s)\n",
        c, w, sy, b / w / 1e6, u + s, m / 1024, sc }'
  else
    echo "   $client: $STATUS ($NOTE) after ${wall}s; log: $BENCH_DIR/last-logs/$(basename "$log")"
    tail -5 "$log" | sed 's/^/      | /'
  fi
  echo "   bytes by source (kind=bytes/peers that sent any): $src"
  [ "$names" = - ] || echo "   clients seen: $names"
  local trs
  trs=$(tr_state)
  swarm_down "$tag"
  echo "   swarm at the end: $(swarm_state "$tag")$trs"
  rm -rf "$dest"
}

if has_phase swarm; then
  echo
  echo "== swarm: $PEERS peers: $N_SEEDERS libtorrent seeders (upload ${SEED_LIMIT_KIB} KiB/s each, 0: unlimited),"
  echo "   $N_LEECHERS libtorrent leechers (256..2048 KiB/s down), $N_ARIA aria2c and $N_TR Transmission (1 MB/s down);"
  echo "   timeout ${RUN_TIMEOUT}s =="
  for ((run = 1; run <= RUNS; run++)); do
    for client in $(run_order "$run"); do measure "$client" "$run"; done
  done
fi

# --- phase 2: one seeder, many leechers ------------------------------------------------------------
# seed_run SEEDER RUN: the seeder on HOST_IP, then SEED_LEECHERS libtorrent leechers at once.
seed_run() {
  local seeder=$1 run=$2 tag=seed-$1-$2 i ok=0 args=() sp lp cpu0 cpu1 lcpu status=ok note="" fin=()
  local llog=$LOGS/seed-$1-$2-leechers.log slog=$LOGS/seed-$1-$2-seeder.log t0 t
  echo
  echo "-- $seeder run $run/$RUNS: seeds alone to $SEED_LEECHERS leechers"
  start_tracker "$tag"
  local run_pids=("$TRACKER_PID")
  case $seeder in
    pixtorrent)
      start "$tag-seeder" env PIXTORRENT_PROGRESS_SECS=1 "$PIX" -t "$T_SWARM" -o "$PAYLOAD/data" --seed \
        --bind "$HOST_IP" --port 6881
      sp=$LAST_PID
      # env execs pixtorrent: the pid is pixtorrent's. It checks the data, then listens.
      for ((i = 0; i < 3000; i++)); do
        kill -0 "$sp" 2>/dev/null || break
        if grep -q '^seeding:' "$slog" && port_open_on "$HOST_IP" 6881; then ok=1; break; fi
        sleep 0.1
      done
      ;;
    libtorrent)
      start "$tag-seeder" "$PY" tests/peers/lt_peer.py --seed --recheck --torrent "$T_SWARM" \
        --dir "$PAYLOAD/data" --listen "$HOST_IP:6881" --stats-secs 3600 --ready-timeout 300 \
        --max-secs $((RUN_TIMEOUT + 600)) --parent-pid $$
      sp=$LAST_PID
      wait_ready "$tag-seeder" 300 >/dev/null && ok=1
      ;;
  esac
  run_pids+=("$sp")
  if ((!ok)); then
    echo "   the $seeder seeder did not get ready:"
    tail -5 "$slog" | sed 's/^/      | /'
    printf '%s\t%s\tFAILED\t0\t%s\t0\t0\t0\t0\t0\t0\t0\t%s\n' "$seeder" "$run" "$SEED_LEECHERS" "seeder not ready" >>"$SEED_RESULTS"
    stop_procs "${run_pids[@]}"
    return
  fi
  for ((i = 1; i <= SEED_LEECHERS; i++)); do args+=(--peer "leech$i,$(peer_ip "$i"):6881,0,0"); done
  mkdir -p "$DATA_DIR/$tag"
  cpu0=$(cpu_of "$sp")
  start "$tag-leechers" ip netns exec "$NS" "$PY" "$HELPERS/swarm_peers.py" --leech --torrent "$T_SWARM" \
    --dir "$DATA_DIR/$tag" "${args[@]}" --stats-secs 5 --max-secs $((RUN_TIMEOUT + 300)) --parent-pid $$
  lp=$LAST_PID
  run_pids+=("$lp")
  # Until every leecher is done, the timeout, or the leechers' process gives up.
  t0=$(date +%s)
  while :; do
    if grep -q '^ALLDONE' "$llog"; then break; fi
    if grep -q '^ERROR' "$llog" || ! kill -0 "$lp" 2>/dev/null; then status=FAILED note="leechers: $(grep '^ERROR' "$llog" | head -1)"; break; fi
    if ! kill -0 "$sp" 2>/dev/null; then status=FAILED note="the seeder exited"; break; fi
    t=$(date +%s)
    if ((t - t0 > RUN_TIMEOUT)); then status=TIMEOUT note="not all done within ${RUN_TIMEOUT}s"; break; fi
    sleep 0.2
  done
  cpu1=$(cpu_of "$sp")
  lcpu=$(cpu_of "$lp")
  read -r -a fin < <("$PY" "$HELPERS/swarm_report.py" finish "$llog" "$HOST_IP")
  local last=${fin[3]} # the last DONE's time
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$seeder" "$run" "$status" "${fin[0]}" "$SEED_LEECHERS" "$last" \
    "${fin[1]}" "${fin[2]}" "${fin[3]}" "${fin[4]}" "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')" \
    "$lcpu" "$note" >>"$SEED_RESULTS"
  awk -v s="$seeder" -v st="$status" -v d="${fin[0]}" -v n="$SEED_LEECHERS" -v l="$last" -v a="${fin[1]}" -v m="${fin[2]}" \
    -v z="${fin[3]}" -v sb="${fin[4]}" -v c0="$cpu0" -v c1="$cpu1" -v b="$PAYLOAD_BYTES" 'BEGIN {
      printf "   %s: %s, %d/%d done, last at %.2f s; finish min/median/max %.2f/%.2f/%.2f s; seeder sent %.1f MB (%.1f MB/s), CPU %.2f s\n",
      s, st, d, n, l, a, m, z, sb / 1e6, (l > 0 ? sb / l / 1e6 : 0), c1 - c0 }'
  [ -z "$note" ] || echo "   $note"
  stop_procs "${run_pids[@]}"
  rm -rf "${DATA_DIR:?}/$tag"
}

if has_phase seed; then
  echo
  echo "== seed: one seeder at $HOST_IP, $SEED_LEECHERS libtorrent leechers (unlimited) started at once; timeout ${RUN_TIMEOUT}s =="
  for ((run = 1; run <= RUNS; run++)); do
    for seeder in $(run_order "$run"); do seed_run "$seeder" "$run"; done
  done
fi

echo
echo "MB = 10^6 bytes, GB = 10^9 bytes; runs per client and phase: $RUNS; python3-libtorrent $LT_VERSION (the"
echo "libtorrent leecher: scripts/bench/lt_leech.py; the seeder: tests/peers/lt_peer.py; CPU: the python process"
echo "hosting libtorrent); aria2c $ARIA_VERSION; $TR_VERSION; $(nproc) cores."
echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HELPERS/swarm_report.py" table "$SWARM_RESULTS" "$SEED_RESULTS" "$PAYLOAD_BYTES"
# Keep what this run made (a run of one phase has no file of the other).
for f in "$SWARM_RESULTS" "$SEED_RESULTS" "$KINDS"; do [[ -e $f ]] && cp "$f" "$LOGS/"; done
true
