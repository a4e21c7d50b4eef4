#!/usr/bin/env bash
# Download benchmark: pixtorrent against aria2c and a libtorrent leecher, all fetching the same payload
# from the same two local libtorrent seeders, in one run, reported as ratios. Then the same again with a
# delay added each way between leecher and seeders (a userspace TCP delay line: this kernel has no netem).
# Then a web-seed-only download (BEP 19): no tracker, no peer, only the torrent's `url-list` pointing at
# our own nginx on 127.0.0.1 serving the payload.
#
# Usage: scripts/bench-download.sh [--size-mb N] [--runs N] [--quick] [--timeout SECS] [--clients LIST]
#                                  [--no-delay | --delay-only] [--delay-ms N]
#                                  [--no-webseed | --webseed-only] [--webseed-log]
#   --size-mb N     payload size, the big file's MiB (default 1024); cached under $BENCH_DIR
#   --runs N        timed downloads per client and phase (default 3); the table shows medians
#   --quick         smoke run of the script itself: --size-mb 64 --runs 1
#   phases (default: direct, delay, webseed, in that order):
#   --no-delay      skip the delayed phase;  --delay-only: only the delayed phase
#   --no-webseed    skip the web-seed phase; --webseed-only: only the web-seed phase
#   --delay-ms N    added one-way delay in the delayed phase (default 25)
#   --timeout SECS  bound on each download (default 600); a run over it is reported as TIMEOUT
#   --clients LIST  comma-separated subset of pixtorrent,aria2c,libtorrent (default: all three)
#   --webseed-log   diagnostic: nginx logs every request and each web-seed run prints its requests
#                   (count, connections at once, range sizes); costs nginx a write per request
# Environment: BENCH_DIR (default /tmp/pixtorrent-bench) caches the payload and keeps the last run's
# logs in $BENCH_DIR/last-logs; PIXTORRENT_BIN skips `cargo build --release` and uses that binary.
#
# What is measured: the time until the files are on disk: wall time of the whole client process
# (start, tracker, download, verify, exit) plus a `sync` run the moment it exits. pixtorrent writes
# back while downloading and fdatasyncs before exiting (its sync takes ~0 s); libtorrent and aria2c
# leave dirty pages behind (libtorrent about 0.6 s per GiB here), which the clock would otherwise
# miss. The log line of each run shows both parts. User+sys CPU and peak RSS come from
# /usr/bin/time (for the libtorrent leecher that is the python process around libtorrent). Each download is compared byte for byte with the source; a broken download is
# FAILED and doesn't count. In the delayed phase the leechers only know the relays (a fake tracker
# hands out just their addresses; DHT, LSD, PEX off), and the relays must have carried the payload.
# In the web-seed phase the torrent has the same info dict, a `url-list` of http://127.0.0.1:PORT/ and
# no announce at all; Debian's nginx (its own instance: 1 worker, sendfile, access log off, stopped with
# the script) serves $BENCH_DIR's payload, and must have sent at least the payload's size to each
# client; the "seeders CPU" column is then nginx's.
set -euo pipefail
# The DHT stays off: a demo or benchmark never reaches the public DHT routers.
export PIXTORRENT_NO_DHT=1 PIXTORRENT_FORBID_PUBLIC_DHT=1
cd "$(dirname "$0")/.."
source scripts/lib.sh

PY=/usr/bin/python3
HELPERS=scripts/bench
BENCH_DIR=${BENCH_DIR:-/tmp/pixtorrent-bench}
SIZE_MB=1024
RUNS=3
PHASES=(direct delay webseed)
DELAY_MS=25
RUN_TIMEOUT=600
CLIENTS=(pixtorrent aria2c libtorrent)
WEBSEED_LOG=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --size-mb) SIZE_MB=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --no-delay) PHASES=("${PHASES[@]/delay/}") ;;
    --delay-only) PHASES=(delay) ;;
    --no-webseed) PHASES=("${PHASES[@]/webseed/}") ;;
    --webseed-only) PHASES=(webseed) ;;
    --webseed-log) WEBSEED_LOG=1 ;;
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
read -r -a PHASES <<<"${PHASES[*]}" # drops the phases blanked above
((${#PHASES[@]})) || { echo "no phase left to run" >&2; exit 2; }
has_phase() { [[ " ${PHASES[*]} " == *" $1 "* ]]; }
# Without pixtorrent among the clients there is nothing to build.
[[ " ${CLIENTS[*]} " == *" pixtorrent "* ]] || PIXTORRENT_BIN=${PIXTORRENT_BIN:-/bin/true}

# The real programs the benchmark runs (Debian packages).
PACKAGES=(opentracker mktorrent aria2 python3-libtorrent time)
ensure_packages "${PACKAGES[@]}"
if has_phase webseed; then
  ensure_packages nginx
  # Debian's package may start its own service on port 80 where services can start (not in a container
  # with a policy-rc.d that forbids it). It is not ours to keep running: stop it by its pid file.
  if ((INSTALLED)) && [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    echo "stopping the nginx service the package started (pid $(cat /run/nginx.pid))"
    kill -QUIT "$(cat /run/nginx.pid)" || true
  fi
fi
source scripts/bench/common.sh

echo "payload: $SRC, $NFILES files, $PAYLOAD_BYTES bytes, info-hash $INFOHASH"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine skews the numbers)"

# --- the swarm: opentracker and two libtorrent seeders ---------------------------------------------
SEED_PIDS=()
SEED_PORTS=()
start_swarm() {
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
for i in 1 2; do
  start "seeder$i" "$PY" tests/peers/lt_peer.py --seed --recheck --torrent "$T_DIRECT" --dir "$PAYLOAD/data" \
    --listen "127.0.0.1:$(free_port)" --stats-secs 3600 --ready-timeout 600 --max-secs 86400 --parent-pid $$
  SEED_PIDS+=("$LAST_PID")
done
for i in 1 2; do SEED_PORTS+=("$(wait_ready "seeder$i" 600)"); done
echo "seeders: 127.0.0.1:${SEED_PORTS[0]} 127.0.0.1:${SEED_PORTS[1]} (libtorrent $("$PY" -c 'import libtorrent; print(libtorrent.__version__)')), tracker 127.0.0.1:$OT_PORT"
}
if has_phase direct || has_phase delay; then start_swarm; fi

# --- the web seed: our own nginx on 127.0.0.1 ------------------------------------------------------
NG_PIDS=()
start_webseed() {
  local user_line="" access_log="access_log off;"
  NG_DIR=$RUN_DIR/nginx
  mkdir -p "$NG_DIR/tmp"
  NG_PORT=$(free_port)
  if [ "$(id -u)" = 0 ]; then user_line="user root;"; fi
  if ((WEBSEED_LOG)); then access_log="access_log $NG_DIR/access.log webseed;"; fi
  sed -e "s|@PREFIX@|$NG_DIR|g" -e "s|@PORT@|$NG_PORT|g" -e "s|@ROOT@|$PAYLOAD/data|g" \
    -e "s|@USER_LINE@|$user_line|" -e "s|@ACCESS_LOG@|$access_log|" "$HELPERS/webseed-nginx.conf.in" >"$NG_DIR/nginx.conf"
  start nginx /usr/sbin/nginx -p "$NG_DIR/" -c "$NG_DIR/nginx.conf" -e "$NG_DIR/error.log" -g 'daemon off;'
  NG_PIDS=("$LAST_PID")
  for _ in $(seq 50); do port_open "$NG_PORT" && break; sleep 0.1; done
  if ! port_open "$NG_PORT"; then
    echo "nginx did not start:"
    cat "$LOGS/nginx.log" "$NG_DIR/error.log" 2>/dev/null
    exit 1
  fi
  # A worker has answered once this passes.
  "$PY" "$HELPERS/webseed.py" check "http://127.0.0.1:$NG_PORT/$NAME/$NAME.mp4"
  NG_WORKER=$(pgrep -P "${NG_PIDS[0]}" | head -1) || true
  [ -n "$NG_WORKER" ] || { echo "nginx has no worker process" >&2; exit 1; }
  NG_PIDS+=("$NG_WORKER")
  # The page cache holds the payload before the first timed run, as the seeders' recheck ensures in
  # the other phases.
  find "$SRC" -type f -exec cat {} + >/dev/null
  T_WEBSEED=$RUN_DIR/webseed.torrent
  "$PY" "$HELPERS/webseed.py" torrent "$PAYLOAD/base.torrent" "http://127.0.0.1:$NG_PORT/" "$T_WEBSEED"
  echo "web seed: http://127.0.0.1:$NG_PORT/ ($(/usr/sbin/nginx -v 2>&1 | sed 's/.*: //'), pid ${NG_PIDS[0]}, worker $NG_WORKER," \
    "root $PAYLOAD/data); torrent: url-list only, no tracker"
}
# ng_counters: nginx's accepted connections and requests so far, then the bytes its worker has written
# (sendfile counts there).
ng_counters() {
  local io
  io=$(awk '/^wchar:/ { print $2 }' "/proc/$NG_WORKER/io" 2>/dev/null || echo 0)
  echo "$("$PY" "$HELPERS/webseed.py" stats "http://127.0.0.1:$NG_PORT/.nginx_status") $io"
}

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
  local seed0 relay0 bytes0 server_pids=("${SEED_PIDS[@]}") ng0=() ng1=() log0=0
  if [ "$phase" = webseed ]; then
    server_pids=("${NG_PIDS[@]}")
    read -r -a ng0 <<<"$(ng_counters)"
    if ((WEBSEED_LOG)); then log0=$(stat -c %s "$NG_DIR/access.log" 2>/dev/null || echo 0); fi
  fi
  seed0=$(cpu_of "${server_pids[@]}")
  relay0=$(cpu_of "${RELAY_PIDS[@]}")
  bytes0=$(relay_bytes)
  rm -f "$tf"
  echo "command: ${cmd[*]}" >"$log"
  timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%e %U %S %M' -o "$tf" "${cmd[@]}" >>"$log" 2>&1 &
  CUR_PID=$!
  wait "$CUR_PID" || rc=$?
  CUR_PID=""
  local seed1 relay1
  seed1=$(cpu_of "${server_pids[@]}")
  # /usr/bin/time writes nothing when it is killed along with the client (timeout).
  # Until the data is on disk: what the client left dirty is written now, on the clock.
  local sync0 syncs
  sync0=$(date +%s.%N)
  sync
  syncs=$(awk -v a="$sync0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  if [ -s "$tf" ]; then read -r wall user sys rss < <(tail -1 "$tf") || true; fi
  wall=$(awk -v w="$wall" -v s="$syncs" 'BEGIN { printf "%.2f", w + s }')
  run_status "$rc" "$dest"
  status=$STATUS note=$NOTE
  if [ "$status" = TIMEOUT ]; then wall=$RUN_TIMEOUT; fi
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
  local ng_line=""
  if [ "$phase" = webseed ]; then
    # Every request has been logged and counted once the client's connections are closed.
    sleep 0.2
    read -r -a ng1 <<<"$(ng_counters)"
    # Each counter read is a connection and a request of its own: the one after counts itself.
    local conns=$((ng1[0] - ng0[0] - 1)) reqs=$((ng1[1] - ng0[1] - 1)) sent=$((ng1[2] - ng0[2]))
    ng_line="nginx: $conns connections, $reqs requests, $(awk -v b="$sent" 'BEGIN { printf "%.1f", b / 1e6 }') MB sent"
    if [ "$status" = ok ]; then
      if ((sent < PAYLOAD_BYTES)); then
        status=FAILED note="nginx sent only $sent of $PAYLOAD_BYTES bytes (data came from elsewhere?)"
      else
        note="conns=$conns reqs=$reqs sent=$sent"
      fi
    fi
    if ((WEBSEED_LOG)); then
      tail -c +$((log0 + 1)) "$NG_DIR/access.log" >"$LOGS/$phase-$client-$run.access.log"
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
      -v sc="$seedcpu" -v sv="$([ "$phase" = webseed ] && echo nginx || echo seeders)" \
      -v sy="$syncs" \
      'BEGIN { printf "  %-10s run %d/%d: %6.2f s (sync after exit %.2f s)  %5.0f MB/s  CPU %.2f s  RSS %.0f MB  (%s CPU %.2f s)\n",
        c, r, n, w, sy, b / w / 1e6, u + s, m / 1024, sv, sc }'
  else
    echo "  $client run $run/$RUNS: $status ($note) after ${wall}s; log: $BENCH_DIR/last-logs/$(basename "$log")"
    tail -5 "$log" | sed 's/^/      | /'
  fi
  if [ -n "$ng_line" ]; then echo "             $ng_line"; fi
  if [ "$phase" = webseed ] && ((WEBSEED_LOG)); then
    "$PY" "$HELPERS/webseed.py" log "$LOGS/$phase-$client-$run.access.log" | sed 's/^/             /'
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
  elif [ "$phase" = webseed ]; then
    echo
    echo "== webseed: leechers download only from a web seed (BEP 19), nginx on loopback ($RUNS runs each) =="
    start_webseed
    if ((WEBSEED_LOG)); then echo "diagnostic run: nginx logs every request (timings include that)"; fi
    run_phase webseed "$T_WEBSEED"
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
for phase in "${PHASES[@]}"; do
  grep -P "^$phase\t" "$RESULTS" >"$RUN_DIR/results-$phase.tsv" || continue
  "$PY" "$HELPERS/report.py" "$RUN_DIR/results-$phase.tsv" "$PAYLOAD_BYTES"
  if [ "$phase" = webseed ]; then
    echo "(webseed: the \"seeders CPU\" column is nginx's, master and worker)"
    "$PY" "$HELPERS/webseed.py" ratio "$RESULTS" webseed
  fi
done
cp "$RESULTS" "$LOGS/results.tsv"
