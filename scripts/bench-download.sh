#!/usr/bin/env bash
# Download benchmark: pixtorrent against aria2c and a libtorrent leecher, all fetching the same payload
# from the same two local libtorrent seeders, in one run, reported as ratios. Then the same again with a
# delay added each way between leecher and seeders (a userspace TCP delay line: this kernel has no netem).
#
# Usage: scripts/bench-download.sh [--size-mb N] [--runs N] [--no-delay | --delay-only] [--quick]
#                                  [--delay-ms N] [--timeout SECS] [--clients LIST]
#   --size-mb N     payload size, the big file's MiB (default 1024); cached under $BENCH_DIR
#   --runs N        timed downloads per client and phase (default 3); the table shows medians
#   --no-delay      only the direct (loopback) phase;  --delay-only: only the delayed phase
#   --quick         smoke run of the script itself: --size-mb 64 --runs 1
#   --delay-ms N    added one-way delay in the delayed phase (default 25)
#   --timeout SECS  bound on each download (default 600); a run over it is reported as TIMEOUT
#   --clients LIST  comma-separated subset of pixtorrent,aria2c,libtorrent (default: all three)
# Environment: BENCH_DIR (default /tmp/pixtorrent-bench) caches the payload and keeps the last run's
# logs in $BENCH_DIR/last-logs; PIXTORRENT_BIN skips `cargo build --release` and uses that binary.
#
# What is measured: wall time of the whole client process (start, tracker, download, verify, exit),
# user+sys CPU and peak RSS from /usr/bin/time (for the libtorrent leecher that is the python process
# around libtorrent). Each download is compared byte for byte with the source; a broken download is
# FAILED and doesn't count. In the delayed phase the leechers only know the relays (a fake tracker
# hands out just their addresses; DHT, LSD, PEX off), and the relays must have carried the payload.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

PY=/usr/bin/python3
HELPERS=scripts/bench
BENCH_DIR=${BENCH_DIR:-/tmp/pixtorrent-bench}
SIZE_MB=1024
RUNS=3
PHASES=(direct delay)
DELAY_MS=25
RUN_TIMEOUT=600
CLIENTS=(pixtorrent aria2c libtorrent)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --size-mb) SIZE_MB=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --no-delay) PHASES=(direct) ;;
    --delay-only) PHASES=(delay) ;;
    --quick) SIZE_MB=64; RUNS=1 ;;
    --delay-ms) DELAY_MS=$2; shift ;;
    --timeout) RUN_TIMEOUT=$2; shift ;;
    --clients) IFS=, read -r -a CLIENTS <<<"$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for c in "${CLIENTS[@]}"; do
  case $c in pixtorrent | aria2c | libtorrent) ;; *) echo "unknown client: $c" >&2; exit 2 ;; esac
done

# The real programs the benchmark runs (Debian packages).
PACKAGES=(opentracker mktorrent aria2 python3-libtorrent time)
ensure_packages "${PACKAGES[@]}"
source scripts/bench/common.sh

echo "payload: $SRC, $NFILES files, $PAYLOAD_BYTES bytes, info-hash $INFOHASH"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine skews the numbers)"

# --- the swarm: opentracker and two libtorrent seeders ---------------------------------------------
# Debian's opentracker serves whitelisted info-hashes only; it chroots into -d, so the list's path is
# relative to that directory, which must be readable by `nobody`.
OT_DIR=$RUN_DIR/opentracker
mkdir -p "$OT_DIR"
chmod 755 "$OT_DIR"
echo "$INFOHASH" >"$OT_DIR/wl.txt"
chmod 644 "$OT_DIR/wl.txt"
OT_PORT=$(free_port)
start opentracker opentracker -i 127.0.0.1 -p "$OT_PORT" -P "$OT_PORT" -d "$OT_DIR" -w /wl.txt
for _ in $(seq 50); do port_open "$OT_PORT" && break; sleep 0.1; done
port_open "$OT_PORT" || { echo "opentracker did not start:"; cat "$LOGS/opentracker.log"; exit 1; }
T_DIRECT=$RUN_DIR/direct.torrent
"$PY" "$HELPERS/torrent_tool.py" reannounce "$PAYLOAD/base.torrent" "http://127.0.0.1:$OT_PORT/announce" "$T_DIRECT"

# Seeders hash-check their data before READY, so no timed run pays for the seeders' first reads.
SEED_PIDS=()
SEED_PORTS=()
for i in 1 2; do
  start "seeder$i" "$PY" tests/peers/lt_peer.py --seed --recheck --torrent "$T_DIRECT" --dir "$PAYLOAD/data" \
    --listen "127.0.0.1:$(free_port)" --stats-secs 3600 --ready-timeout 600 --max-secs 86400 --parent-pid $$
  SEED_PIDS+=("$LAST_PID")
done
for i in 1 2; do SEED_PORTS+=("$(wait_ready "seeder$i" 600)"); done
echo "seeders: 127.0.0.1:${SEED_PORTS[0]} 127.0.0.1:${SEED_PORTS[1]} (libtorrent $("$PY" -c 'import libtorrent; print(libtorrent.__version__)')), tracker 127.0.0.1:$OT_PORT"

# --- one timed download ----------------------------------------------------------------------------
RESULTS=$RUN_DIR/results.tsv
: >"$RESULTS"
RELAY_PIDS=()

# relay_bytes: bytes the relays have carried from the seeders to finished connections so far.
relay_bytes() {
  if compgen -G "$LOGS/relay*.log" >/dev/null; then
    awk -F'from_target=' '/^CLOSED/ { s += $2 } END { printf "%.0f", s }' "$LOGS"/relay*.log
  else
    echo 0
  fi
}

# run_one PHASE CLIENT RUN TORRENT
run_one() {
  local phase=$1 client=$2 run=$3 torrent=$4
  local dest=$RUN_DIR/dl-$phase-$client-$run log=$LOGS/$phase-$client-$run.log tf=$RUN_DIR/time.out
  local cmd=() rc=0 status=ok note="" wall=0 user=0 sys=0 rss=0
  mkdir -p "$dest"
  case $client in
    pixtorrent) cmd=("$PIX" -t "$torrent" -o "$dest" --port 0 --bind 127.0.0.1) ;;
    aria2c)
      cmd=(aria2c --no-conf=true --seed-time=0 --enable-dht=false --enable-dht6=false --bt-enable-lpd=false
        --enable-peer-exchange=false --bt-tracker-connect-timeout=10 --bt-tracker-timeout=10
        --file-allocation=falloc --listen-port="$(free_port)" --summary-interval=0 --console-log-level=warn
        --allow-overwrite=true --auto-file-renaming=false --bt-save-metadata=false -d "$dest" "$torrent") ;;
    libtorrent) cmd=("$PY" -X faulthandler "$HELPERS/lt_leech.py" --torrent "$torrent" --dir "$dest" --max-secs "$RUN_TIMEOUT") ;;
  esac
  local seed0 relay0 bytes0
  seed0=$(cpu_of "${SEED_PIDS[@]}")
  relay0=$(cpu_of "${RELAY_PIDS[@]}")
  bytes0=$(relay_bytes)
  rm -f "$tf"
  echo "command: ${cmd[*]}" >"$log"
  timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%e %U %S %M' -o "$tf" "${cmd[@]}" >>"$log" 2>&1 &
  CUR_PID=$!
  wait "$CUR_PID" || rc=$?
  CUR_PID=""
  local seed1 relay1
  seed1=$(cpu_of "${SEED_PIDS[@]}")
  # /usr/bin/time writes nothing when it is killed along with the client (timeout).
  if [ -s "$tf" ]; then read -r wall user sys rss < <(tail -1 "$tf") || true; fi
  if ((rc == 124 || rc == 137)); then
    status=TIMEOUT note="no exit within ${RUN_TIMEOUT}s" wall=$RUN_TIMEOUT
  elif ((rc != 0)); then
    status=FAILED note="exit status $rc"
  else
    local bad
    bad=$(verify "$dest" | head -3 | paste -sd ';' -)
    if [ -n "$bad" ]; then status=FAILED note="verify: $bad"; fi
  fi
  if [ "$phase" = delay ] && [ "$status" = ok ]; then
    # The connections close once the leecher is gone; wait for the relays to account for them.
    local carried=0
    for _ in $(seq 50); do
      carried=$(($(relay_bytes) - bytes0))
      ((carried >= PAYLOAD_BYTES)) && break
      sleep 0.1
    done
    if ((carried < PAYLOAD_BYTES)); then
      status=FAILED note="relays carried only $carried of $PAYLOAD_BYTES bytes (reached the seeders directly?)"
    fi
  fi
  relay1=$(cpu_of "${RELAY_PIDS[@]}")
  local seedcpu relaycpu
  seedcpu=$(awk -v a="$seed0" -v b="$seed1" 'BEGIN { printf "%.2f", b - a }')
  relaycpu=$(awk -v a="$relay0" -v b="$relay1" 'BEGIN { printf "%.2f", b - a }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$client" "$run" "$status" "$wall" "$user" \
    "$sys" "$rss" "$seedcpu" "$relaycpu" "$note" >>"$RESULTS"
  if [ "$status" = ok ]; then
    awk -v c="$client" -v r="$run" -v n="$RUNS" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" -v b="$PAYLOAD_BYTES" \
      -v sc="$seedcpu" 'BEGIN { printf "  %-10s run %d/%d: %6.2f s  %5.0f MB/s  CPU %.2f s  RSS %.0f MB  (seeders CPU %.2f s)\n",
        c, r, n, w, b / w / 1e6, u + s, m / 1024, sc }'
  else
    echo "  $client run $run/$RUNS: $status ($note) after ${wall}s; log: $BENCH_DIR/last-logs/$(basename "$log")"
    tail -5 "$log" | sed 's/^/      | /'
  fi
  rm -rf "$dest"
  sync
}

# --- phases ----------------------------------------------------------------------------------------
run_phase() {
  local phase=$1 torrent=$2 run client
  for ((run = 1; run <= RUNS; run++)); do
    for client in "${CLIENTS[@]}"; do run_one "$phase" "$client" "$run" "$torrent"; done
  done
}

for phase in "${PHASES[@]}"; do
  if [ "$phase" = direct ]; then
    echo
    echo "== direct: leechers reach the seeders on loopback ($RUNS runs each, timeout ${RUN_TIMEOUT}s) =="
    run_phase direct "$T_DIRECT"
  else
    echo
    echo "== delay: ${DELAY_MS} ms each way between leecher and seeders =="
    echo "relay ceiling (one relay process, one stream, no BitTorrent):"
    "$PY" "$HELPERS/delay_relay.py" selftest --delay-ms 0 --mb 1024 | sed 's/^/  /'
    "$PY" "$HELPERS/delay_relay.py" selftest --delay-ms "$DELAY_MS" --mb 1024 | sed 's/^/  /'
    relay_peers=()
    for i in 1 2; do
      start "relay$i" "$PY" "$HELPERS/delay_relay.py" --listen "127.0.0.1:0" \
        --target "127.0.0.1:${SEED_PORTS[i - 1]}" --delay-ms "$DELAY_MS"
      RELAY_PIDS+=("$LAST_PID")
      relay_peers+=(--peer "127.0.0.1:$(wait_ready "relay$i" 10)")
    done
    start fake_tracker "$PY" "$HELPERS/fake_tracker.py" --listen 127.0.0.1:0 "${relay_peers[@]}"
    FT_PORT=$(wait_ready fake_tracker 10)
    T_DELAY=$RUN_DIR/delay.torrent
    "$PY" "$HELPERS/torrent_tool.py" reannounce "$PAYLOAD/base.torrent" "http://127.0.0.1:$FT_PORT/announce" "$T_DELAY"
    echo "relays: ${relay_peers[*]//--peer/} -> seeders; fake tracker 127.0.0.1:$FT_PORT hands out only the relays"
    run_phase delay "$T_DELAY"
  fi
done

echo
echo "MB = 10^6 bytes, GB = 10^9 bytes; wall/CPU/RSS: medians over successful runs (RSS: the largest);"
echo "libtorrent = python3-libtorrent $("$PY" -c 'import libtorrent; print(libtorrent.__version__)') leecher (CPU and RSS of the python process"
echo "hosting libtorrent); aria2c $(aria2c --version | head -1 | awk '{ print $3 }'); $(nproc) cores."
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HELPERS/report.py" "$RESULTS" "$PAYLOAD_BYTES"
cp "$RESULTS" "$LOGS/results.tsv"
