#!/usr/bin/env bash
# Download benchmark: pixtorrent against aria2c and a libtorrent leecher, all fetching the same payload
# from the same two local libtorrent seeders, in one run, reported as ratios. Then the same again with a
# delay added each way between leecher and seeders (a userspace TCP delay line: this kernel has no netem).
# Then with encryption forced (RC4 only), then over uTP only (BEP 29), directly and through a userspace
# UDP delay line. Then a web-seed-only download (BEP 19): no tracker, no peer, only the torrent's
# `url-list` pointing at our own nginx on 127.0.0.1 serving the payload.
#
# Usage: scripts/bench-download.sh [--size-mb N] [--runs N] [--quick] [--timeout SECS] [--clients LIST]
#                                  [--phases LIST] [--skip LIST]
#                                  [--no-delay | --delay-only] [--delay-ms N]
#                                  [--no-webseed | --webseed-only] [--webseed-log]
#   --size-mb N     payload size, the big file's MiB (default 1024); cached under $BENCH_DIR
#   --runs N        timed downloads per client and phase (default 3); the table shows medians
#   --quick         smoke run of the script itself: --size-mb 64 --runs 1
#   phases (default: all, in this order):
#     direct        plain TCP, leechers reach the seeders on loopback
#     delay         plain TCP through relays that add --delay-ms each way
#     encrypted     seeders force MSE/PE with RC4 (lt_peer.py --encryption forced); pixtorrent with its
#                   default options (-v, to log each connection's transport, which must be tcp+rc4); the
#                   libtorrent leecher forces RC4 too; aria2c --bt-require-crypto=true --bt-min-crypto-level=arc4
#     utp           uTP only: seeders lt_peer.py --no-tcp --utp, pixtorrent --no-tcp (-v: every connection
#                   must be utp), the libtorrent leecher with TCP off and uTP on; aria2c has no uTP: skipped
#     utp-delay     the same through UDP relays that add --delay-ms each way (scripts/bench/udp_delay_relay.py)
#     webseed       web seed only (BEP 19)
#   --phases LIST   comma-separated phases to run (in the order above); --skip LIST: all but those
#   --no-delay      skip the delayed phases (delay, utp-delay); --delay-only: only the delay phase
#   --no-webseed    skip the web-seed phase; --webseed-only: only the web-seed phase
#   --delay-ms N    added one-way delay in the delayed phases (default 25)
#   --timeout SECS  bound on each download (default 600); a run over it is reported as TIMEOUT
#   --clients LIST  comma-separated subset of pixtorrent,aria2c,libtorrent (default: all three)
#   --format F      v1 (default), v2 or hybrid (BEP 52): the torrent of the payload, made by
#                   `pixtorrent create --v2/--hybrid` with the same 1 MiB pieces; aria2c (v1 only) is
#                   left out of v2 and hybrid runs, and so is the webseed phase
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
# FAILED and doesn't count. In the delayed phases the leechers only know the relays (a fake tracker
# hands out just their addresses; DHT, LSD, PEX off), and the relays must have carried the payload.
# In the encrypted and uTP phases pixtorrent runs with -v and a run whose log shows a connection over
# another transport (or none) is FAILED; the libtorrent leecher (scripts/bench/lt_leech_opts.py: the
# same lt_leech.py with those settings) reports each peer's transport and encryption, shown per run.
# Each seeder set (plain, encrypted, uTP) has its own opentracker and runs only for its phases. In the
# uTP phases each run also shows the system-wide UDP receive-buffer drops (/proc/net/snmp) during it,
# and in utp-delay what the relays counted: datagrams the seeders sent again (uTP retransmissions),
# datagrams the relays dropped, and the seeders' mean data in flight per connection beside the mean
# window the leecher advertised (about equal: the leecher's receive window is what limits the rate).
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
ALL_PHASES=(direct delay encrypted utp utp-delay webseed)
PHASES=("${ALL_PHASES[@]}")
DELAY_MS=25
RUN_TIMEOUT=600
CLIENTS=(pixtorrent aria2c libtorrent)
WEBSEED_LOG=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
# drop_phases NAME...: takes those phases out of PHASES.
drop_phases() {
  local p keep=()
  for p in "${PHASES[@]}"; do [[ " $* " == *" $p "* ]] || keep+=("$p"); done
  PHASES=("${keep[@]}")
}
# pick_phases LIST: PHASES becomes the phases in the comma-separated LIST, in the usual order.
pick_phases() {
  local p want=() keep=()
  IFS=, read -r -a want <<<"$1"
  for p in "${want[@]}"; do
    [[ " ${ALL_PHASES[*]} " == *" $p "* ]] || { echo "unknown phase: $p" >&2; exit 2; }
  done
  for p in "${ALL_PHASES[@]}"; do [[ " ${want[*]} " == *" $p "* ]] && keep+=("$p"); done
  PHASES=("${keep[@]}")
}
while (($#)); do
  case $1 in
    --size-mb) SIZE_MB=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --phases) pick_phases "$2"; shift ;;
    --skip)
      IFS=, read -r -a skip <<<"$2"
      for p in "${skip[@]}"; do
        [[ " ${ALL_PHASES[*]} " == *" $p "* ]] || { echo "unknown phase: $p" >&2; exit 2; }
      done
      drop_phases "${skip[@]}"
      shift ;;
    --no-delay) drop_phases delay utp-delay ;;
    --delay-only) PHASES=(delay) ;;
    --no-webseed) drop_phases webseed ;;
    --webseed-only) PHASES=(webseed) ;;
    --webseed-log) WEBSEED_LOG=1 ;;
    --quick) SIZE_MB=64; RUNS=1 ;;
    --format) BENCH_FORMAT=$2; shift ;;
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
BENCH_FORMAT=${BENCH_FORMAT:-v1}
if [ "$BENCH_FORMAT" != v1 ]; then
  # aria2 1.36 reads v1 only; a web seed of a v2 torrent is not tried yet.
  kept=()
  for c in "${CLIENTS[@]}"; do [ "$c" = aria2c ] || kept+=("$c"); done
  CLIENTS=("${kept[@]}")
  drop_phases webseed
fi
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

echo "payload: $SRC, $NFILES files, $PAYLOAD_BYTES bytes, $BENCH_FORMAT torrent, info-hash $(echo $INFOHASH)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine skews the numbers)"

# --- the swarm: opentracker and two libtorrent seeders ---------------------------------------------
# One swarm at a time: plain (direct, delay), encrypted (RC4 forced), utp (uTP only, no TCP). Each has
# its own opentracker, so no leecher hears of another swarm's seeders.
SWARM=""
SWARM_PIDS=()
SEED_PIDS=()
SEED_PORTS=()
stop_swarm() {
  [ -n "$SWARM" ] || return 0
  stop_procs "${SWARM_PIDS[@]}"
  SWARM="" SWARM_PIDS=() SEED_PIDS=() SEED_PORTS=()
}
# start_swarm KIND: the seeders for that kind, in place of the running ones; sets T_SWARM, the torrent
# announcing to its tracker.
start_swarm() {
local kind=$1 prefix="" seed_args=() what="" i
[ "$SWARM" = "$kind" ] && return 0
stop_swarm
case $kind in
  plain) ;;
  encrypted) prefix=enc- seed_args=(--encryption forced) what=", RC4 forced (--encryption forced)" ;;
  utp) prefix=utp- seed_args=(--no-tcp --utp) what=", uTP only (--no-tcp --utp)" ;;
esac
# Debian's opentracker serves whitelisted info-hashes only; it chroots into -d, so the list's path is
# relative to that directory, which must be readable by `nobody`.
OT_DIR=$RUN_DIR/${prefix}opentracker
mkdir -p "$OT_DIR"
chmod 755 "$OT_DIR"
echo "$INFOHASH" >"$OT_DIR/wl.txt"
chmod 644 "$OT_DIR/wl.txt"
OT_PORT=$(free_port)
start "${prefix}opentracker" opentracker -i 127.0.0.1 -p "$OT_PORT" -P "$OT_PORT" -d "$OT_DIR" -w /wl.txt
SWARM_PIDS=("$LAST_PID")
for _ in $(seq 50); do port_open "$OT_PORT" && break; sleep 0.1; done
port_open "$OT_PORT" || { echo "opentracker did not start:"; cat "$LOGS/${prefix}opentracker.log"; exit 1; }
T_SWARM=$RUN_DIR/${prefix}direct.torrent
"$PY" "$HELPERS/torrent_tool.py" reannounce "$BASE_TORRENT" "http://127.0.0.1:$OT_PORT/announce" "$T_SWARM"

# Seeders hash-check their data before READY, so no timed run pays for the seeders' first reads.
for i in 1 2; do
  start "${prefix}seeder$i" "$PY" tests/peers/lt_peer.py --seed --recheck --torrent "$T_SWARM" --dir "$PAYLOAD/data" \
    --listen "127.0.0.1:$(free_port)" --stats-secs 3600 --ready-timeout 600 --max-secs 86400 --parent-pid $$ \
    "${seed_args[@]}"
  SEED_PIDS+=("$LAST_PID")
  SWARM_PIDS+=("$LAST_PID")
done
for i in 1 2; do SEED_PORTS+=("$(wait_ready "${prefix}seeder$i" 600)"); done
SWARM=$kind
echo "seeders: 127.0.0.1:${SEED_PORTS[0]} 127.0.0.1:${SEED_PORTS[1]} (libtorrent $("$PY" -c 'import libtorrent; print(libtorrent.__version__)')$what), tracker 127.0.0.1:$OT_PORT"
}

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
  "$PY" "$HELPERS/webseed.py" torrent "$BASE_TORRENT" "http://127.0.0.1:$NG_PORT/" "$T_WEBSEED"
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
RELAY_PIDS=() # the relays of the delayed phase running now

# relay_bytes PHASE: bytes the relays have carried from the seeders so far: TCP relays (delay) count
# finished connections, UDP relays (utp-delay) print cumulative counters every 0.5 s.
relay_bytes() {
  if [ "$1" = utp-delay ]; then
    urelay_stat from_target
  elif compgen -G "$LOGS/relay*.log" >/dev/null; then
    awk -F'from_target=' '/^CLOSED/ { s += $2 } END { printf "%.0f", s }' "$LOGS"/relay*.log
  else
    echo 0
  fi
}

# urelay_stat FIELD: the sum over the UDP relays of FIELD in their latest STATS line.
urelay_stat() {
  local f s=0 v
  for f in "$LOGS"/urelay*.log; do
    [ -f "$f" ] || continue
    v=$(grep '^STATS ' "$f" | tail -1 | grep -oP "(^| )$1=\K[0-9]+" || true)
    s=$((s + ${v:-0}))
  done
  echo "$s"
}

# udp_errors: the system's UDP InErrors, RcvbufErrors and SndbufErrors so far (/proc/net/snmp).
udp_errors() {
  awk '$1 == "Udp:" { if (!h) { for (i = 2; i <= NF; i++) c[$i] = i; h = 1 } else
    print $c["InErrors"], $c["RcvbufErrors"], $c["SndbufErrors"] }' /proc/net/snmp
}

# transports CLIENT LOG: how the client's peer connections went, e.g. "tcp+rc4 x2": pixtorrent's -v
# `connected` lines, or the libtorrent leecher's CONN lines (transport/encryption).
transports() {
  local client=$1 log=$2
  case $client in
    pixtorrent) grep -P ' connected( |$)' "$log" | grep -oP 'transport="?\K[a-z0-9+-]+' ;;
    libtorrent) grep -oP '^CONN \S+ transport=\K\S+ encryption=\S+' "$log" | sed 's/ encryption=/\//' ;;
  esac | sort | uniq -c | awk '{ printf "%s%s x%d", (NR > 1 ? ", " : ""), $2, $1 }'
}

# transport_check CLIENT LOG PHASE: complains (prints why) unless every connection of the run used the
# phase's transport: tcp+rc4 (pixtorrent) or tcp/rc4 (libtorrent) when encrypted, uTP in the uTP phases.
transport_check() {
  local client=$1 log=$2 phase=$3 want list bad
  case $phase in
    encrypted) want='^tcp[+/]rc4$' ;;
    utp | utp-delay) want='^utp([+/]|$)' ;;
    *) return 0 ;;
  esac
  case $client in
    pixtorrent) list=$(grep -P ' connected( |$)' "$log" | grep -oP 'transport="?\K[a-z0-9+-]+' || true) ;;
    libtorrent) list=$(grep -oP '^CONN \S+ transport=\K\S+ encryption=\S+' "$log" | sed 's/ encryption=/\//' || true) ;;
    *) return 0 ;;
  esac
  if [ -z "$list" ]; then
    echo "no connection logged"
    return 0
  fi
  bad=$(grep -vP "$want" <<<"$list" | sort -u | paste -sd, - || true)
  [ -z "$bad" ] || echo "connections over $bad"
}

# run_one PHASE CLIENT RUN TORRENT
run_one() {
  local phase=$1 client=$2 run=$3 torrent=$4
  local dest=$RUN_DIR/dl-$phase-$client-$run log=$LOGS/$phase-$client-$run.log tf=$RUN_DIR/time.out
  local cmd=() rc=0 status=ok note="" wall=0 user=0 sys=0 rss=0
  mkdir -p "$dest"
  case $client in
    pixtorrent)
      cmd=("$PIX" -t "$torrent" -o "$dest" --port 0 --bind 127.0.0.1)
      case $phase in
        encrypted) cmd+=(-v) ;; # the default --encryption prefer: RC4-only seeders get RC4
        utp | utp-delay) cmd+=(--no-tcp -v) ;;
      esac ;;
    aria2c)
      cmd=(aria2c --no-conf=true --seed-time=0 --enable-dht=false --enable-dht6=false --bt-enable-lpd=false
        --enable-peer-exchange=false --bt-tracker-connect-timeout=10 --bt-tracker-timeout=10
        --file-allocation=falloc --listen-port="$(free_port)" --summary-interval=0 --console-log-level=warn
        --allow-overwrite=true --auto-file-renaming=false --bt-save-metadata=false -d "$dest")
      if [ "$phase" = encrypted ]; then cmd+=(--bt-require-crypto=true --bt-min-crypto-level=arc4); fi
      cmd+=("$torrent") ;;
    libtorrent)
      case $phase in
        encrypted) cmd=("$PY" -X faulthandler "$HELPERS/lt_leech_opts.py" --encryption forced) ;;
        utp | utp-delay) cmd=("$PY" -X faulthandler "$HELPERS/lt_leech_opts.py" --no-tcp --utp) ;;
        *) cmd=("$PY" -X faulthandler "$HELPERS/lt_leech.py") ;;
      esac
      cmd+=(--torrent "$torrent" --dir "$dest" --max-secs "$RUN_TIMEOUT") ;;
  esac
  local udp0=() ur0=() f
  local ur_fields=(resent_from dropped data_from data_bytes_from inflight_n inflight_sum wnd_sum)
  read -r -a udp0 <<<"$(udp_errors)"
  for f in "${ur_fields[@]}"; do ur0+=("$(urelay_stat "$f")"); done
  local seed0 relay0 bytes0 server_pids=("${SEED_PIDS[@]}") ng0=() ng1=() log0=0
  if [ "$phase" = webseed ]; then
    server_pids=("${NG_PIDS[@]}")
    read -r -a ng0 <<<"$(ng_counters)"
    if ((WEBSEED_LOG)); then log0=$(stat -c %s "$NG_DIR/access.log" 2>/dev/null || echo 0); fi
  fi
  seed0=$(cpu_of "${server_pids[@]}")
  relay0=$(cpu_of "${RELAY_PIDS[@]}")
  bytes0=$(relay_bytes "$phase")
  rm -f "$tf"
  echo "command: ${cmd[*]}" >"$log"
  timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%e %U %S %M' -o "$tf" "${cmd[@]}" >>"$log" 2>&1 &
  CUR_PID=$!
  wait "$CUR_PID" || rc=$?
  CUR_PID=""
  local udp1=()
  read -r -a udp1 <<<"$(udp_errors)"
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
  local check
  check=$(transport_check "$client" "$log" "$phase")
  if [ -n "$check" ] && [ "$status" = ok ]; then status=FAILED note="transport: $check"; fi
  if [[ $phase == delay || $phase == utp-delay ]] && [ "$status" = ok ]; then
    # The connections close once the leecher is gone; wait for the relays to account for them.
    local carried=0
    for _ in $(seq 50); do
      carried=$(($(relay_bytes "$phase") - bytes0))
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
  case $phase in
    encrypted | utp | utp-delay)
      case $client in
        pixtorrent | libtorrent) echo "             connections: $(transports "$client" "$log")" ;;
        aria2c) echo "             connections: not logged (aria2c required RC4 by its options, the seeders allow only RC4)" ;;
      esac ;;
  esac
  if [[ $phase == utp || $phase == utp-delay ]]; then
    local line="UDP errors on the machine during the run: InErrors $((udp1[0] - udp0[0])), RcvbufErrors $((udp1[1] - udp0[1])), SndbufErrors $((udp1[2] - udp0[2]))"
    echo "             $line"
    if [ "$phase" = utp-delay ]; then
      local d=() i
      for i in "${!ur_fields[@]}"; do d+=($(($(urelay_stat "${ur_fields[i]}") - ur0[i]))); done
      echo "             relays: datagrams resent by the seeders ${d[0]}, dropped ${d[1]}; $(awk -v dp="${d[2]}" -v db="${d[3]}" \
        -v n="${d[4]}" -v s="${d[5]}" -v w="${d[6]}" 'BEGIN { if (n == 0 || dp == 0) { print "no uTP data seen"; exit }
          printf "seeders\047 data in flight per connection %.0f KiB on average, window the leecher advertised %.0f KiB",
            s / n * db / dp / 1024, w / n / 1024 }')"
    fi
  fi
  if [ "$phase" = webseed ] && ((WEBSEED_LOG)); then
    "$PY" "$HELPERS/webseed.py" log "$LOGS/$phase-$client-$run.access.log" | sed 's/^/             /'
  fi
  rm -rf "$dest"
  sync
}

# --- phases ----------------------------------------------------------------------------------------
# run_phase PHASE TORRENT: RUNS rounds, each client once per round (aria2c has no uTP: not in those).
run_phase() {
  local phase=$1 torrent=$2 run client clients=()
  for client in "${CLIENTS[@]}"; do
    if [[ $client == aria2c && ($phase == utp || $phase == utp-delay) ]]; then
      echo "  aria2c: skipped (no uTP in aria2c)"
      continue
    fi
    clients+=("$client")
  done
  for ((run = 1; run <= RUNS; run++)); do
    for client in "${clients[@]}"; do run_one "$phase" "$client" "$run" "$torrent"; done
  done
}

# start_relays KIND: two delay relays (KIND tcp: delay_relay.py, udp: udp_delay_relay.py) in front of the
# seeders and a fake tracker handing out only them; sets RELAY_PIDS, FAKE_PIDS and T_DELAY.
FAKE_PIDS=()
start_relays() {
  local kind=$1 name relay_peers=() i
  for i in 1 2; do
    if [ "$kind" = tcp ]; then
      name=relay$i
      start "$name" "$PY" "$HELPERS/delay_relay.py" --listen "127.0.0.1:0" \
        --target "127.0.0.1:${SEED_PORTS[i - 1]}" --delay-ms "$DELAY_MS"
    else
      name=urelay$i
      start "$name" "$PY" "$HELPERS/udp_delay_relay.py" --listen "127.0.0.1:0" \
        --target "127.0.0.1:${SEED_PORTS[i - 1]}" --delay-ms "$DELAY_MS" --parent-pid $$
    fi
    RELAY_PIDS+=("$LAST_PID")
    relay_peers+=(--peer "127.0.0.1:$(wait_ready "$name" 10)")
  done
  start "fake_tracker_$kind" "$PY" "$HELPERS/fake_tracker.py" --listen 127.0.0.1:0 "${relay_peers[@]}"
  FAKE_PIDS=("$LAST_PID")
  FT_PORT=$(wait_ready "fake_tracker_$kind" 10)
  T_DELAY=$RUN_DIR/delay-$kind.torrent
  "$PY" "$HELPERS/torrent_tool.py" reannounce "$BASE_TORRENT" "http://127.0.0.1:$FT_PORT/announce" "$T_DELAY"
  echo "relays ($kind): ${relay_peers[*]//--peer/} -> seeders; fake tracker 127.0.0.1:$FT_PORT hands out only the relays"
}
stop_relays() {
  stop_procs "${RELAY_PIDS[@]}" "${FAKE_PIDS[@]}"
  RELAY_PIDS=() FAKE_PIDS=()
}

for phase in "${PHASES[@]}"; do
  echo
  case $phase in
    direct)
      echo "== direct: leechers reach the seeders on loopback ($RUNS runs each, timeout ${RUN_TIMEOUT}s) =="
      start_swarm plain
      run_phase direct "$T_SWARM"
      ;;
    delay)
      echo "== delay: ${DELAY_MS} ms each way between leecher and seeders =="
      start_swarm plain
      echo "relay ceiling (one relay process, one stream, no BitTorrent):"
      "$PY" "$HELPERS/delay_relay.py" selftest --delay-ms 0 --mb 1024 | sed 's/^/  /'
      "$PY" "$HELPERS/delay_relay.py" selftest --delay-ms "$DELAY_MS" --mb 1024 | sed 's/^/  /'
      start_relays tcp
      run_phase delay "$T_DELAY"
      stop_relays
      ;;
    encrypted)
      echo "== encrypted: the seeders accept only MSE/PE with RC4; pixtorrent's default options (-v), libtorrent"
      echo "   leecher RC4 forced, aria2c --bt-require-crypto=true --bt-min-crypto-level=arc4 ($RUNS runs each) =="
      start_swarm encrypted
      run_phase encrypted "$T_SWARM"
      ;;
    utp)
      echo "== utp: uTP only, leechers reach the seeders on loopback: seeders --no-tcp --utp, pixtorrent --no-tcp (-v),"
      echo "   libtorrent leecher TCP off and uTP on ($RUNS runs each) =="
      start_swarm utp
      run_phase utp "$T_SWARM"
      ;;
    utp-delay)
      echo "== utp-delay: uTP only, ${DELAY_MS} ms each way between leecher and seeders (UDP relays) =="
      start_swarm utp
      echo "UDP relay ceiling (one relay process, one flow, 1400-byte datagrams, acknowledged every 16, no BitTorrent):"
      "$PY" "$HELPERS/udp_delay_relay.py" selftest --delay-ms 0 --mb 256 --window-kb 8192 | sed 's/^/  /'
      "$PY" "$HELPERS/udp_delay_relay.py" selftest --delay-ms "$DELAY_MS" --mb 256 --window-kb 8192 | sed 's/^/  /'
      start_relays udp
      run_phase utp-delay "$T_DELAY"
      stop_relays
      ;;
    webseed)
      echo "== webseed: leechers download only from a web seed (BEP 19), nginx on loopback ($RUNS runs each) =="
      stop_swarm # its seeders have no part in this phase
      start_webseed
      if ((WEBSEED_LOG)); then echo "diagnostic run: nginx logs every request (timings include that)"; fi
      run_phase webseed "$T_WEBSEED"
      ;;
  esac
done
stop_swarm

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
echo
"$PY" "$HELPERS/vs_libtorrent.py" "$RESULTS" "$PAYLOAD_BYTES"
cp "$RESULTS" "$LOGS/results.tsv"
