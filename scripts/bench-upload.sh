#!/usr/bin/env bash
# Upload benchmark: leechers fetching the same payload from pixtorrent as the only seeder and from a
# python3-libtorrent seeder as the only seeder, in one run, reported per leecher as a ratio together
# with each seeder's CPU and memory. Leechers: python3-libtorrent, transmission-daemon (in a network
# namespace of the script's own: it ignores peers on 127.0.0.0/8) and rtorrent.
#
# Usage: scripts/bench-upload.sh [--size-mb N] [--runs N] [--quick] [--timeout SECS] [--stall SECS]
#                                [--seeders LIST] [--leechers LIST]
#   --size-mb N      payload size, the big file's MiB (default 1024); cached under $BENCH_DIR (the same
#                    payload and torrent as scripts/bench-download.sh)
#   --runs N         timed downloads per leecher and seeder (default 3); the tables show medians
#   --quick          smoke run of the script itself: --size-mb 64 --runs 1
#   --timeout SECS   bound on each download and on each seeder's start (default 900: Transmission
#                    fetched 1 GiB from pixtorrent at about 3 MB/s); a download over it is TIMEOUT
#   --stall SECS     a leecher that reads less than 1 MiB in this long is given up as STALLED
#                    (default 60; 0: never)
#   --seeders LIST   comma-separated subset of pixtorrent,libtorrent (default: both)
#   --leechers LIST  comma-separated subset of libtorrent,transmission,rtorrent (default: all three;
#                    transmission needs root for its namespace)
# Environment: BENCH_DIR (default /tmp/pixtorrent-bench) caches the payload and keeps the last run's
# logs in $BENCH_DIR/last-logs; PIXTORRENT_BIN skips `cargo build --release` and uses that binary;
# PIXTORRENT_SEED_ARGS adds arguments to the pixtorrent seeder (e.g. -v).
#
# What is measured, per run: each seeder is started fresh for the run (pixtorrent `--seed --bind IP`,
# libtorrent via tests/peers/lt_peer.py --seed --recheck), both hash-check the data before they count
# as ready, so the payload is in the page cache for either. Then one leecher fetches the torrent from a
# fake tracker that hands out only that seeder (DHT, LSD, PEX off everywhere):
#   libtorrent    scripts/bench/lt_leech.py on 127.0.0.1; done when it exits (DONE line)
#   transmission  transmission-daemon 3.00 in the namespace, the seeder and the tracker on the host end
#                 of its veth pair; done when its torrent-done script runs
#   rtorrent      rtorrent 0.9.8 as a daemon on 127.0.0.1; done when event.download.finished runs
# Recorded: the leecher's wall time from its start to done, its CPU and peak RSS (libtorrent: the
# whole process, /usr/bin/time; the daemons: /proc when done); the seeder's CPU seconds used while the
# leecher ran (/proc/PID/stat, all threads), its VmRSS once ready, and just before it is stopped its
# VmHWM (peak RSS), VmRSS and RssFile (file-backed pages, e.g. a mapped payload) from /proc/PID/status.
# The seeders alternate (A B, B A, ...) for each leecher. Each download is compared byte for byte with
# the source; a broken download is FAILED and doesn't count.
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
RUN_TIMEOUT=900
STALL_SECS=60
SEEDERS=(pixtorrent libtorrent)
LEECHERS=(libtorrent transmission rtorrent)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --size-mb) SIZE_MB=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --quick) SIZE_MB=64; RUNS=1 ;;
    --timeout) RUN_TIMEOUT=$2; shift ;;
    --stall) STALL_SECS=$2; shift ;;
    --seeders) IFS=, read -r -a SEEDERS <<<"$2"; shift ;;
    --leechers) IFS=, read -r -a LEECHERS <<<"$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for s in "${SEEDERS[@]}"; do
  case $s in pixtorrent | libtorrent) ;; *) echo "unknown seeder: $s" >&2; exit 2 ;; esac
done
for l in "${LEECHERS[@]}"; do
  case $l in libtorrent | transmission | rtorrent) ;; *) echo "unknown leecher: $l" >&2; exit 2 ;; esac
done
has_leecher() { [[ " ${LEECHERS[*]} " == *" $1 "* ]]; }

# The real programs the benchmark runs (Debian packages).
PACKAGES=(mktorrent python3-libtorrent time)
has_leecher transmission && PACKAGES+=(transmission-daemon transmission-cli iproute2)
has_leecher rtorrent && PACKAGES+=(rtorrent)
ensure_packages "${PACKAGES[@]}"
source scripts/bench/common.sh
source scripts/bench/leechers.sh
# Processes first (common.sh's cleanup; /usr/bin/time does not pass SIGTERM on to the libtorrent
# leecher, so that one by its own pid), then the namespace they ran in.
LEECH_PID=""
leech_children() {
  local child
  [ -n "$LEECH_PID" ] || return 0
  for child in $(pgrep -P "$LEECH_PID" || true); do kill -TERM "$child" 2>/dev/null || true; done
}
trap 'leech_children; cleanup; netns_down' EXIT
if has_leecher transmission; then
  netns_up
  echo "namespace $NS: host side $NS_HOST_IP ($NS_HOST_IF), Transmission at $NS_IP"
fi
read -r -a PIX_EXTRA <<<"${PIXTORRENT_SEED_ARGS:-}"

# stop PID: SIGTERM, up to 5 s to exit, then SIGKILL; reaps it and forgets it.
stop() {
  local pid=$1 p keep=()
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# mem_of PID: "VmHWM VmRSS RssFile" in kB from /proc/PID/status ("0 0 0" if it is gone).
mem_of() {
  awk '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 } /^RssFile:/ { f = $2 }
    END { printf "%d %d %d\n", h, r, f }' "/proc/$1/status" 2>/dev/null || echo "0 0 0"
}

LT_VERSION=$("$PY" -c 'import libtorrent; print(libtorrent.__version__)')
echo "payload: $SRC, $NFILES files, $PAYLOAD_BYTES bytes, info-hash $INFOHASH"
echo "pixtorrent: $PIX; libtorrent $LT_VERSION; $(nproc) cores; leechers: ${LEECHERS[*]}"
TR_VERSION="" RT_VERSION=""
if has_leecher transmission; then TR_VERSION=$(transmission-daemon --version 2>&1 | head -1); fi
if has_leecher rtorrent; then RT_VERSION=$(rtorrent -h 2>/dev/null | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1); fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $LOAD_BEFORE (other work on this machine skews the numbers)"

# --- one timed upload ------------------------------------------------------------------------------
RESULTS=$RUN_DIR/results.tsv
: >"$RESULTS"

# start_seeder SEEDER TAG TORRENT IP PORT: starts the seeder on IP:PORT and waits until it serves;
# sets SEED_PID and SEED_READY (seconds from start to ready). Returns 1 (log shown) if it does not get
# ready in time.
start_seeder() {
  local seeder=$1 name=seed-$2 torrent=$3 ip=$4 port=$5 t0 i ok=0
  t0=$(date +%s.%N)
  case $seeder in
    pixtorrent)
      start "$name" env PIXTORRENT_PROGRESS_SECS=1 "$PIX" -t "$torrent" -o "$PAYLOAD/data" --seed \
        --bind "$ip" --port "$port" "${PIX_EXTRA[@]}"
      SEED_PID=$LAST_PID
      # env execs pixtorrent, so the pid is pixtorrent's. It checks the data, then listens; the first
      # `seeding:` line comes once the check is done (one per PIXTORRENT_PROGRESS_SECS).
      for ((i = 0; i < RUN_TIMEOUT * 10; i++)); do
        kill -0 "$SEED_PID" 2>/dev/null || break
        if grep -q '^seeding:' "$LOGS/$name.log" && port_open_on "$ip" "$port"; then ok=1; break; fi
        sleep 0.1
      done
      if ((!ok)); then
        echo "pixtorrent seeder did not get ready; its log:" >&2
        tail -20 "$LOGS/$name.log" >&2
        return 1
      fi
      ;;
    libtorrent)
      start "$name" "$PY" tests/peers/lt_peer.py --seed --recheck --torrent "$torrent" --dir "$PAYLOAD/data" \
        --listen "$ip:$port" --stats-secs 3600 --ready-timeout "$RUN_TIMEOUT" --max-secs 86400 --parent-pid $$
      SEED_PID=$LAST_PID
      wait_ready "$name" "$RUN_TIMEOUT" >/dev/null || return 1
      ;;
  esac
  SEED_READY=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}

# read_bytes PID: bytes PID and its children have read so far: /proc/PID/io rchar (read(2) on sockets
# and files) plus bytes_received of their TCP sockets in this namespace, from ss. A leecher's
# progress: the space its files take did not follow Transmission's download (unchanged for 60 s while
# 240 MB came in); rtorrent writes through mmap, and its socket reads are recv(2), which rchar misses.
read_bytes() {
  local p r total=0
  for p in "$1" $(pgrep -P "$1" || true); do
    r=$(awk '/^rchar:/ { print $2 }' "/proc/$p/io" 2>/dev/null || true)
    total=$((total + ${r:-0}))
    r=$(ss -tinpH 2>/dev/null | awk -v pid="pid=$p," '
      index($0, pid) { mine = 1; next }
      mine { for (i = 1; i <= NF; i++) if ($i ~ /^bytes_received:/) { split($i, kv, ":"); n += kv[2] } }
      { mine = 0 }
      END { print n + 0 }')
    total=$((total + ${r:-0}))
  done
  echo "$total"
}

# usecs: microseconds since the epoch (no fork).
usecs() { echo "${EPOCHREALTIME/./}"; }

# watch_leecher T0: waits until the leecher is done (LEECH_DONE exists, or for libtorrent: its process
# exited), the time is up, it reads less than 1 MiB in STALL_SECS, or it dies. Polls every 0.1 s,
# reads its byte count every second. Sets WATCH to done, TIMEOUT, STALLED or DIED and WALL to the
# seconds since T0 (from usecs).
watch_leecher() {
  local t0=$1 bytes mark=-1 last_change t i=0
  last_change=$(usecs)
  while :; do
    if [ -n "$LEECH_DONE" ] && [ -e "$LEECH_DONE" ]; then WATCH=done; break; fi
    if ! kill -0 "$LEECH_PID" 2>/dev/null; then
      if [ -z "$LEECH_DONE" ]; then WATCH=done; else WATCH=DIED; fi
      break
    fi
    t=$(usecs)
    if ((t - t0 > RUN_TIMEOUT * 1000000)); then WATCH=TIMEOUT; break; fi
    if ((i++ % 10 == 0)); then
      bytes=$(read_bytes "$LEECH_PID")
      if ((mark < 0 || bytes - mark >= 1048576 || mark - bytes >= 1048576)); then
        mark=$bytes last_change=$t
      elif ((STALL_SECS > 0 && t - last_change > STALL_SECS * 1000000)); then
        WATCH=STALLED
        break
      fi
    fi
    sleep 0.1
  done
  t=$(usecs)
  WALL=$(awk -v d="$((t - t0))" 'BEGIN { printf "%.2f", d / 1e6 }')
}

# stop_tree PID: stops PID's children (by their pids), then PID itself.
stop_tree() {
  local child
  for child in $(pgrep -P "$1" || true); do kill -TERM "$child" 2>/dev/null || true; done
  stop "$1"
}

# run_one LEECHER SEEDER RUN
run_one() {
  local leecher=$1 seeder=$2 run=$3 tag=$1-$2-$3
  local dest=$RUN_DIR/dl-$tag log=$LOGS/leech-$tag.log tf=$RUN_DIR/time.out
  local rc=0 status=ok note="" wall=0 lcpu=0 lrss=0 done_s=0 port ft_port torrent ip=127.0.0.1
  local cpu0 cpu1 seedcpu hwm=0 vmrss=0 rssfile=0 t0 user=0 sys=0
  [ "$leecher" = transmission ] && ip=$NS_HOST_IP
  # A fake tracker that hands out only this seeder; the seeder gets the same torrent (it announces
  # there and is told about itself, which is harmless).
  port=$(free_port)
  start "tracker-$tag" "$PY" "$HELPERS/fake_tracker.py" --listen "$ip:0" --peer "$ip:$port"
  local tracker_pid=$LAST_PID
  ft_port=$(wait_ready "tracker-$tag" 10)
  torrent=$RUN_DIR/$tag.torrent
  "$PY" "$HELPERS/torrent_tool.py" reannounce "$PAYLOAD/base.torrent" "http://$ip:$ft_port/announce" "$torrent"

  if ! start_seeder "$seeder" "$tag" "$torrent" "$ip" "$port"; then
    printf '%s\t%s\t%s\tFAILED\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t%s\n' "$leecher" "$seeder" "$run" "seeder did not get ready" >>"$RESULTS"
    echo "  $leecher <- $seeder run $run/$RUNS: FAILED (seeder did not get ready)"
    stop "$SEED_PID"
    stop "$tracker_pid"
    return
  fi

  mkdir -p "$dest"
  local rss_ready
  rss_ready=$(mem_of "$SEED_PID" | cut -d' ' -f2)
  cpu0=$(cpu_of "$SEED_PID")
  rm -f "$tf"
  LEECH_DONE=""
  t0=$(usecs)
  case $leecher in
    libtorrent)
      local cmd=("$PY" -X faulthandler "$HELPERS/lt_leech.py" --torrent "$torrent" --dir "$dest" --max-secs "$RUN_TIMEOUT")
      echo "command: ${cmd[*]}" >"$log"
      /usr/bin/time -f '%e %U %S %M' -o "$tf" "${cmd[@]}" >>"$log" 2>&1 &
      LEECH_PID=$!
      PIDS+=("$LEECH_PID")
      ;;
    transmission)
      if ! start_transmission "leech-$tag" "$torrent" "$dest"; then
        status=FAILED note="transmission-daemon did not take the torrent"
      fi
      ;;
    rtorrent) start_rtorrent "leech-$tag" "$torrent" "$dest" ;;
  esac
  WATCH=FAILED WALL=0
  [ "$status" = ok ] && watch_leecher "$t0"
  wall=$WALL
  cpu1=$(cpu_of "$SEED_PID")
  read -r hwm vmrss rssfile < <(mem_of "$SEED_PID")
  kill -0 "$SEED_PID" 2>/dev/null || note="seeder exited during the run"
  case $leecher in
    libtorrent)
      if [ "$WATCH" = done ]; then
        wait "$LEECH_PID" || rc=$?
        stop "$LEECH_PID"
        # /usr/bin/time's own figure: the whole process.
        if [ -s "$tf" ]; then read -r wall user sys lrss < <(tail -1 "$tf") || true; fi
        lcpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
      else
        # /usr/bin/time does not pass SIGTERM on to the leecher.
        stop_tree "$LEECH_PID"
      fi
      done_s=$(sed -n 's/^DONE t=//p' "$log" | head -1)
      ;;
    transmission | rtorrent)
      lcpu=$(cpu_of "$LEECH_PID")
      lrss=$(mem_of "$LEECH_PID" | cut -d' ' -f1)
      done_s=$wall
      if [ "$leecher" = transmission ]; then stop_transmission; else stop "$LEECH_PID"; fi
      ;;
  esac
  done_s=${done_s:-0}
  stop "$SEED_PID"
  stop "$tracker_pid"
  seedcpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')

  if [ "$status" != ok ]; then
    :
  elif [ "$WATCH" != done ]; then
    status=$WATCH
    case $WATCH in
      TIMEOUT) note="not done within ${RUN_TIMEOUT}s" ;;
      STALLED) note="less than 1 MiB received in ${STALL_SECS}s" ;;
      DIED) note="the leecher exited before it was done" ;;
    esac
  elif ((rc != 0)); then
    status=FAILED note="exit status $rc"
  else
    if [ "$leecher" = transmission ]; then
      # Transmission 3.00 does not create zero-length files: not the seeder's fault.
      local rel
      while IFS= read -r -d '' rel; do
        rel=${rel#"$SRC"/}
        [ -e "$dest/$NAME/$rel" ] || touch "$dest/$NAME/$rel"
      done < <(find "$SRC" -type f -empty -print0)
    fi
    local bad
    bad=$(verify "$dest" | head -3 | paste -sd ';' -)
    if [ -n "$bad" ]; then status=FAILED note="verify: $bad"; fi
    if [ "$leecher" = libtorrent ]; then
      # Every block must have come from the seeder under test.
      local others
      others=$(grep '^PEER ' "$log" | grep -v "^PEER $ip:$port " | paste -sd ';' - || true)
      if [ -n "$others" ]; then status=FAILED note="blocks from other peers: $others"; fi
    fi
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$leecher" "$seeder" "$run" "$status" \
    "$wall" "$done_s" "$lcpu" "$lrss" "$seedcpu" "$hwm" "$vmrss" "$rssfile" "$SEED_READY" "$rss_ready" "$note" >>"$RESULTS"
  if [ "$status" = ok ]; then
    awk -v l="$leecher" -v c="$seeder" -v r="$run" -v n="$RUNS" -v w="$wall" -v b="$PAYLOAD_BYTES" -v sc="$seedcpu" \
      -v h="$hwm" -v f="$rssfile" -v lc="$lcpu" -v rd="$SEED_READY" -v r0="$rss_ready" 'BEGIN {
        printf "  %-12s <- %-10s run %d/%d: %7.2f s %4.0f MB/s  seeder: CPU %.2f s, RSS %.0f MB when ready, peak %.0f MB (file %.0f MB), ready in %.1f s  leecher CPU %.2f s\n",
        l, c, r, n, w, b / w / 1e6, sc, r0 / 1024, h / 1024, f / 1024, rd, lc }'
  else
    echo "  $leecher <- $seeder run $run/$RUNS: $status ($note) after ${wall}s; logs: $BENCH_DIR/last-logs/*$tag*"
    if [ -n "${PIX_EXTRA[*]}" ] && [ "$seeder" = pixtorrent ]; then
      grep -E 'disconnected|flood' "$LOGS/seed-$tag.log" | tail -3 | sed 's/^/      | seeder: /'
    fi
    tail -3 "$log" | sed 's/^/      | /'
  fi
  rm -rf "$dest"
  sync
}

echo
echo "== upload to one leecher ($RUNS runs per leecher and seeder, timeout ${RUN_TIMEOUT}s, stall ${STALL_SECS}s) =="
for ((run = 1; run <= RUNS; run++)); do
  order=("${SEEDERS[@]}")
  if ((run % 2 == 0)); then
    order=()
    for ((i = ${#SEEDERS[@]} - 1; i >= 0; i--)); do order+=("${SEEDERS[i]}"); done
  fi
  for leecher in "${LEECHERS[@]}"; do
    for seeder in "${order[@]}"; do run_one "$leecher" "$seeder" "$run"; done
  done
done

echo
echo "MB = 10^6 bytes, GB = 10^9 bytes; medians over successful runs, peak RSS: the largest."
echo "leechers: python3-libtorrent $LT_VERSION (lt_leech.py)${TR_VERSION:+, $TR_VERSION}${RT_VERSION:+, rtorrent $RT_VERSION};"
echo "libtorrent seeder: python3-libtorrent $LT_VERSION (lt_peer.py; CPU and RSS of the python process hosting"
echo "libtorrent); $(nproc) cores."
echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
cp "$RESULTS" "$LOGS/results.tsv"
"$PY" "$HELPERS/upload_report.py" "$RESULTS" "$PAYLOAD_BYTES"
