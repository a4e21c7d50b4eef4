#!/usr/bin/env bash
# Many-torrents benchmark (issue 17): 500 small torrents seeding in one pixtorrent process, against one
# python3-libtorrent session seeding the same 500 from the same directory. Each client in turn, alone:
# the time until every torrent seeds, then, once idle, its CPU over --idle-secs and what it holds:
# resident memory, open file descriptors, threads, and files mapped.
#
# Usage: scripts/bench-many.sh [--torrents N] [--idle-secs N] [--quick] [--tracker local|dead]
#                              [--clients LIST] [--lt-seed-mode] [--progress-secs N]
#                              [--settle-secs N] [--startup-timeout N] [--nofile N]
#   --torrents N        how many torrents (default 500); the payload is cached, so more only adds the rest
#   --idle-secs N       the measured idle window (default 60)
#   --quick             smoke run: --torrents 50 --idle-secs 15
#   --tracker KIND      local (default): pixtorrent-tracker on 127.0.0.1 (in memory, its default announce
#                       interval of 1800 s, so no re-announce falls in the window), a fresh one per client;
#                       dead: http://127.0.0.1:9/announce, where nothing listens (every announce is refused
#                       and retried: the idle cost of a tracker that is down)
#   --clients LIST      comma-separated subset of pixtorrent,libtorrent (default both, in that order)
#   --lt-seed-mode      libtorrent adds the torrents in seed_mode (no check at start) instead of checking
#                       the files as pixtorrent does on its first run
#   --progress-secs N   PIXTORRENT_PROGRESS_SECS for pixtorrent (default: unset, pixtorrent's 2 s). Its
#                       stderr is a file, so it writes a `seeding:` line per torrent every N s: 250 lines
#                       a second for 500 torrents at the default, part of what is measured. Above 10 the
#                       lines can no longer tell when all torrents seed: the wait is then for its CPU to
#                       settle (3 s in a row under 5% of a core)
#   --settle-secs N     pause between "all seeding" and the window (default 5): startup announces and
#                       the last checks are out of the way
#   --startup-timeout N bound on the wait for every torrent to seed (default 300)
#   --nofile N          run the clients with a soft limit of N open files (prlimit), e.g. 1024, the
#                       usual default of a login session; by default they inherit the script's
# Environment: BENCH_DIR (default /tmp/pixtorrent-bench) caches the payload in $BENCH_DIR/many and keeps
# the last run's logs in $BENCH_DIR/many-last-logs; PIXTORRENT_BIN picks the pixtorrent binary (default
# target/release/pixtorrent, built with `cargo build --release` only when missing); the local tracker is
# pixtorrent-tracker beside it.
#
# The payload: torrent i is a directory many-NNNN of 2 or 3 files of random bytes (one of them in a
# subdirectory), 1 to 4 MiB in all (2.5 MiB on average: 1.25 GB for 500), made with `pixtorrent create`
# (piece size auto: 16 KiB here). Both clients seed it from $BENCH_DIR/many/data, each with a fresh state
# (pixtorrent: an empty XDG_STATE_HOME, so no resume data; libtorrent: no resume data), so both check
# every piece at start (unless --lt-seed-mode). Both listen on 127.0.0.1 only; no DHT, LSD, UPnP,
# NAT-PMP; the only tracker is on 127.0.0.1 (or refused there). No peer ever connects: this is the cost
# of holding the torrents, not of serving them.
#
# What is measured, per client process (for libtorrent the python3 process hosting the session, whose
# interpreter adds about 20 MB of RSS and one thread to libtorrent's own):
#   startup s     from the process start until every torrent seeds: with the local tracker, until it
#                 has logged a `started` announce for each (both clients send it once the torrent's check
#                 is over, with left=0); with --tracker dead, pixtorrent's `seeding: NAME:` lines (one
#                 per torrent every 2 s, so up to 2 s late) and many_lt.py's SEEDING line (0.1 s). The
#                 lines are what the script waits for in both cases, and their time is printed too
#   idle CPU s    user+sys CPU (/proc/PID/stat) over the window, which starts --settle-secs after that;
#                 CPU % is the same over the window's length (100% = one core). The CPU of each 5 s of
#                 the window is listed too: bursts show timers or announces that fire together
#   RSS MB        VmRSS at the end of the window; peak RSS MB: VmHWM (startup included)
#   fds           open file descriptors at the end (the largest seen in the window is printed beside),
#                 split into data files, sockets and the rest
#   threads       at the end of the window (and every 5 s of it)
#   and, printed per client: write and read syscalls and bytes written to storage in the window
#   (/proc/PID/io), log lines written, the fds by kind, RSS split into anonymous and file-backed pages,
#   announces the local tracker received. $BENCH_DIR/many-last-logs/CLIENT.per-second has the CPU ticks
#   and the thread count of each second of the window
#   mapped files  distinct files under the data directory in /proc/PID/maps at the end (mappings: the
#                 number of such lines)
# Then the client is stopped (SIGTERM) and the time it takes to exit is printed (it announces `stopped`
# for every torrent). The load average is printed at the start and end of each window: anything else
# running on the machine shows there, and idle CPU is small enough to be skewed by it.
set -euo pipefail
# The DHT stays off: a demo or benchmark never reaches the public DHT routers.
export PIXTORRENT_NO_DHT=1 PIXTORRENT_FORBID_PUBLIC_DHT=1
cd "$(dirname "$0")/.."
source scripts/lib.sh

PY=/usr/bin/python3
HELPERS=scripts/bench
BENCH_DIR=${BENCH_DIR:-/tmp/pixtorrent-bench}
NT=500
IDLE_SECS=60
TRACKER=local
CLIENTS=(pixtorrent libtorrent)
LT_SEED_MODE=0
PROGRESS_SECS=""
SETTLE_SECS=5
STARTUP_TIMEOUT=300
NOFILE=""

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --torrents) NT=$2; shift ;;
    --idle-secs) IDLE_SECS=$2; shift ;;
    --quick) NT=50 IDLE_SECS=15 ;;
    --tracker) TRACKER=$2; shift ;;
    --clients) IFS=, read -r -a CLIENTS <<<"$2"; shift ;;
    --lt-seed-mode) LT_SEED_MODE=1 ;;
    --progress-secs) PROGRESS_SECS=$2; shift ;;
    --settle-secs) SETTLE_SECS=$2; shift ;;
    --startup-timeout) STARTUP_TIMEOUT=$2; shift ;;
    --nofile) NOFILE=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ -z "$NOFILE" ] || [[ $NOFILE =~ ^[0-9]+$ ]] || { echo "--nofile: a number" >&2; exit 2; }
for v in NT IDLE_SECS SETTLE_SECS STARTUP_TIMEOUT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "not a number: $v=${!v}" >&2; exit 2; }
done
((NT >= 1 && NT <= 9999)) || { echo "--torrents: 1 to 9999" >&2; exit 2; }
((IDLE_SECS >= 5)) || { echo "--idle-secs: at least 5" >&2; exit 2; }
[[ -z $PROGRESS_SECS || $PROGRESS_SECS =~ ^[1-9][0-9]*$ ]] || { echo "--progress-secs: a positive number" >&2; exit 2; }
case $TRACKER in local | dead) ;; *) echo "--tracker: local or dead" >&2; exit 2 ;; esac
for c in "${CLIENTS[@]}"; do
  case $c in pixtorrent | libtorrent) ;; *) echo "unknown client: $c" >&2; exit 2 ;; esac
done

ensure_packages python3-libtorrent

if [ -n "${PIXTORRENT_BIN:-}" ]; then
  PIX=$PIXTORRENT_BIN
else
  PIX=${CARGO_TARGET_DIR:-target}/release/pixtorrent
  if [ ! -x "$PIX" ] || { [ "$TRACKER" = local ] && [ ! -x "$(dirname "$PIX")/pixtorrent-tracker" ]; }; then
    cargo build --release --quiet
  fi
fi
PIX=$(realpath "$PIX")
TRACKER_BIN=$(dirname "$PIX")/pixtorrent-tracker
if [ "$TRACKER" = local ] && [ ! -x "$TRACKER_BIN" ]; then
  echo "no pixtorrent-tracker beside $PIX (use --tracker dead, or build it)" >&2
  exit 1
fi

# --- processes and cleanup -------------------------------------------------------------------------
mkdir -p "$BENCH_DIR"
RUN_DIR=$(mktemp -d "$BENCH_DIR/many-run.XXXXXX")
PIDS=() # background processes still running, stopped by pid on exit
cleanup() {
  local pid alive
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.2
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -d "$RUN_DIR/logs" ]; then
    rm -rf "$BENCH_DIR/many-last-logs"
    mv "$RUN_DIR/logs" "$BENCH_DIR/many-last-logs"
  fi
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
LOGS=$RUN_DIR/logs
mkdir -p "$LOGS"

# start NAME CMD...: runs CMD in the background, output in $LOGS/NAME.log; its pid lands in $LAST_PID.
start() {
  local name=$1
  shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# stop_proc PID: SIGTERM, then SIGKILL after 20 s; sets STOP_SECS (how long it took to exit) and forgets
# the pid.
stop_proc() {
  local pid=$1 t0 keep=() p
  t0=$(date +%s.%N)
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "  (pid $pid still running 20 s after SIGTERM: killed)"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  STOP_SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# ticks PID: user+sys clock ticks the process has used so far (utime, stime: fields 14 and 15).
ticks() {
  local f st
  f=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  read -r -a st <<<"$f"
  echo $((st[11] + st[12]))
}
HZ=$(getconf CLK_TCK)
# status_kb PID FIELD: a kB figure of /proc/PID/status (VmRSS, VmHWM).
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
threads_of() { awk '$1 == "Threads:" { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
fds_of() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# fd_kinds PID: "data N, sockets N, other N (anon_inode:[eventpoll] N, pipe N, ...)".
fd_kinds() {
  find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null | awk -v d="$DATA/" '
    index($0, d) == 1 { data++; next }
    /^socket:/ { sock++; next }
    { k = $0; sub(/:\[?[0-9]+\]?$/, "", k); sub(/^\/.*/, "file", k); other++; kind[k]++ }
    END {
      s = ""; for (k in kind) s = s (s == "" ? "" : ", ") k " " kind[k]
      printf "data files %d, sockets %d, other %d%s", data, sock, other, (s == "" ? "" : " (" s ")")
    }'
}
# maps_of PID: "DISTINCT LINES": files under DATA mapped, and the mappings of them.
maps_of() {
  awk -v d="$DATA/" 'index($6, d) == 1 { n++; f[$6] = 1 } END { m = 0; for (k in f) m++; printf "%d %d", m, n }' \
    "/proc/$1/maps" 2>/dev/null || echo "0 0"
}
# io_of PID: "SYSCW WRITE_BYTES SYSCR" from /proc/PID/io.
io_of() {
  awk '$1 == "syscw:" { w = $2 } $1 == "write_bytes:" { b = $2 } $1 == "syscr:" { r = $2 }
    END { printf "%d %d %d", w, b, r }' "/proc/$1/io" 2>/dev/null || echo "0 0 0"
}
# announces CLIENT: announces the local tracker has logged so far (0 with --tracker dead).
announces() {
  local f=$LOGS/tracker-$1.log
  [ -f "$f" ] || { echo 0; return; }
  grep -c ' announce' "$f" || true
}
# announce_events CLIENT: "event=Some(Started) N, ..." from the tracker's log.
announce_events() {
  grep ' announce' "$LOGS/tracker-$1.log" | grep -oP 'event=\S+' | sort | uniq -c | awk '{ printf "%s%s %d", (NR > 1 ? ", " : ""), $2, $1 }'
}
# last_started CLIENT: when (epoch seconds) the local tracker logged the NT-th `started` announce, if
# it has; nothing with --tracker dead or fewer.
last_started() {
  local f=$LOGS/tracker-$1.log ts
  [ -f "$f" ] || return 0
  ts=$(grep ' announce' "$f" | grep 'event=Started' | sed -n "${NT}p" | cut -d' ' -f1)
  [ -n "$ts" ] && date -d "$ts" +%s.%N
  return 0
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- payload and torrents (cached) -----------------------------------------------------------------
MANY=$BENCH_DIR/many
mkdir -p "$MANY/data" "$MANY/torrents"
DATA=$(realpath "$MANY/data")
NAMES=()
missing=()
for ((i = 1; i <= NT; i++)); do
  name=$(printf 'many-%04d' "$i")
  NAMES+=("$name")
  [ -f "$MANY/torrents/$name.torrent" ] || missing+=("$name")
done
if ((${#missing[@]})); then
  echo "generating ${#missing[@]} torrents' data in $DATA and their .torrent files ..."
  "$PY" "$HELPERS/many_make.py" data "$DATA" "${missing[@]}"
  for name in "${missing[@]}"; do
    # The announce URL is replaced per run; the info dict, so the info-hash, stays.
    "$PIX" create "$DATA/$name" -o "$MANY/torrents/$name.torrent.tmp" --tracker http://127.0.0.1:1/announce >/dev/null
    mv "$MANY/torrents/$name.torrent.tmp" "$MANY/torrents/$name.torrent"
  done
fi
PAYLOAD_BYTES=0
for name in "${NAMES[@]}"; do
  PAYLOAD_BYTES=$((PAYLOAD_BYTES + $(du -sb --apparent-size "$DATA/$name" | cut -f1)))
done
NFILES=$(for name in "${NAMES[@]}"; do find "$DATA/$name" -type f; done | wc -l)
SRC_TORRENTS=()
for name in "${NAMES[@]}"; do SRC_TORRENTS+=("$MANY/torrents/$name.torrent"); done

echo "payload: $NT torrents, $NFILES files, $(awk -v b="$PAYLOAD_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }') MB in $DATA"
echo "pixtorrent: $PIX ($("$PIX" --version)); libtorrent: python3-libtorrent $("$PY" -c 'import libtorrent; print(libtorrent.__version__)')"
echo "tracker: $TRACKER$([ "$TRACKER" = local ] && echo " (pixtorrent-tracker on 127.0.0.1, announce interval 1800 s)" || echo " (http://127.0.0.1:9/announce, refused)")"
echo "idle window ${IDLE_SECS} s, after ${SETTLE_SECS} s of settling; $(nproc) cores; open-file limit of the clients: ${NOFILE:-$(ulimit -Sn)} (soft); load average now $(loadavg)"

# --- one client -------------------------------------------------------------------------------------
RESULTS=$RUN_DIR/results.tsv
: >"$RESULTS"

# run_client CLIENT
run_client() {
  local client=$1 tpid="" url tdir=$RUN_DIR/torrents-$client torrents=() log=$LOGS/$client.log
  local pid t0 startup="" status=ok note=""
  echo
  echo "== $client: $NT torrents =="
  if [ "$TRACKER" = local ]; then
    local tport
    tport=$(free_port)
    # -v: a line per announce, counted below.
    start "tracker-$client" "$TRACKER_BIN" --listen "127.0.0.1:$tport" -v
    tpid=$LAST_PID
    for _ in $(seq 100); do port_open "$tport" && break; sleep 0.1; done
    port_open "$tport" || { echo "pixtorrent-tracker did not start:"; cat "$LOGS/tracker-$client.log"; exit 1; }
    url=http://127.0.0.1:$tport/announce
  else
    url=http://127.0.0.1:9/announce
  fi
  "$PY" "$HELPERS/many_make.py" reannounce "$url" "$tdir" "${SRC_TORRENTS[@]}"
  for name in "${NAMES[@]}"; do torrents+=("$tdir/$name.torrent"); done
  # Both clients check the data from the page cache: read it all once first.
  for name in "${NAMES[@]}"; do find "$DATA/$name" -type f -exec cat {} + >/dev/null; done
  local limit=()
  [ -z "$NOFILE" ] || limit=(prlimit "--nofile=$NOFILE:" --)
  t0=$(date +%s.%N)
  case $client in
    pixtorrent)
      mkdir -p "$RUN_DIR/state"
      local envs=(XDG_STATE_HOME="$RUN_DIR/state")
      [ -n "$PROGRESS_SECS" ] && envs+=(PIXTORRENT_PROGRESS_SECS="$PROGRESS_SECS")
      start "$client" "${limit[@]}" env "${envs[@]}" "$PIX" -o "$DATA" --seed --port 0 --bind 127.0.0.1 "${torrents[@]}" ;;
    libtorrent)
      local lt_args=()
      ((LT_SEED_MODE)) && lt_args+=(--seed-mode)
      start "$client" "${limit[@]}" "$PY" -X faulthandler "$HELPERS/many_lt.py" --dir "$DATA" --listen 127.0.0.1:0 \
        --parent-pid $$ --max-secs $((STARTUP_TIMEOUT + IDLE_SECS + SETTLE_SECS + 120)) "${lt_args[@]}" "${torrents[@]}" ;;
  esac
  pid=$LAST_PID
  # Wait until every torrent seeds (bounded).
  local i n=0 calm=0 last prev deadline=$((SECONDS + STARTUP_TIMEOUT))
  prev=$(ticks "$pid")
  for ((i = 0; SECONDS < deadline; i++)); do
    sleep 0.2
    if ! kill -0 "$pid" 2>/dev/null; then status=EXITED note="exited during startup"; break; fi
    case $client in
      pixtorrent)
        if [ -n "$PROGRESS_SECS" ] && ((PROGRESS_SECS > 10)); then
          # No lines to tell: 3 s in a row under 5% of a core (a CPU sample every 5th loop, each second).
          ((i % 5 == 4)) || continue
          last=$(ticks "$pid")
          if (((last - prev) * 20 < HZ)); then calm=$((calm + 1)); else calm=0; fi
          prev=$last
          n=$(grep -c '^seeding: ' "$log" || true)
          if ((calm >= 3)); then startup=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a - 3 }'); break; fi
        else
          # Each seeding torrent has a line in every 2 s: the log's tail is enough (it grows 250 lines/s).
          n=$( (tail -n $((NT * 4)) "$log" | grep -oP '^seeding: \Kmany-[0-9]{4}(?=: )' || true) | sort -u | wc -l)
          if ((n >= NT)); then startup=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'); break; fi
        fi ;;
      libtorrent)
        if grep -q '^ERROR' "$log"; then status=FAILED note=$(grep -m1 '^ERROR' "$log"); break; fi
        if grep -q '^SEEDING ' "$log"; then startup=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'); break; fi ;;
    esac
  done
  if [ -z "$startup" ] && [ "$status" = ok ]; then
    status=TIMEOUT note="not all seeding after ${STARTUP_TIMEOUT}s (pixtorrent: $n seen seeding)"
  fi
  if [ "$status" != ok ]; then
    echo "  $status: $note"
    kill -0 "$pid" 2>/dev/null && stop_proc "$pid"
    # pixtorrent names the torrents that failed only when it exits.
    echo "  the log's warnings and errors (counted, torrent names as many-N), then its last lines:"
    grep -E '^error|WARN|ERROR' "$log" | sed -E 's/^[0-9T:.-]+Z +//; s/many-[0-9]{4}/many-N/g' | sort | uniq -c |
      sort -rn | head -10 | sed 's/^/    | /'
    tail -5 "$log" | sed 's/^/    | /'
    if [ -n "$tpid" ]; then
      sleep 1
      echo "  tracker: announces $(announces "$client") ($(announce_events "$client"))"
      stop_proc "$tpid"
    fi
    printf '%s\t%s\t0\t0\t0\t0\t0\t0\t0\t0\t%s\n' "$client" "$NT" "$status" >>"$RESULTS"
    return 0
  fi
  local lines_startup=$startup last_started
  last_started=$(last_started "$client")
  if [ -n "$last_started" ]; then
    startup=$(awk -v a="$t0" -v b="$last_started" 'BEGIN { printf "%.2f", b - a }')
    echo "  every torrent announced \`started\` (left=0, so after its check) to the tracker ${startup} s after the start"
  fi
  echo "  all $NT seeding after ${lines_startup} s by $([ "$client" = pixtorrent ] && [ -n "$PROGRESS_SECS" ] && ((PROGRESS_SECS > 10)) && echo "its CPU (settled)" || echo "its output")$([ "$client" = libtorrent ] && grep -m1 '^SEEDING ' "$log" | grep -oP 'checked=\d+' | sed 's/^/ (torrents that went through checking_files: /; s/checked=//; s/$/)/')"
  echo "  waiting ${SETTLE_SECS} s before the window"
  sleep "$SETTLE_SECS"

  # The window: a CPU sample every second; fds, threads and RSS every 5 s.
  local la0 la1 c0 c1 cprev cnow w0 w1 k per5=() slice=0 maxfd=0 maxthr=0 thr5=() f th lines0 lines1 series=() tseries=()
  local io0=() io1=() ann0=0 ann1=0
  la0=$(loadavg)
  ann0=$(announces "$client")
  read -r -a io0 <<<"$(io_of "$pid")"
  lines0=$(wc -l <"$log")
  c0=$(ticks "$pid")
  cprev=$c0
  w0=$(date +%s.%N)
  for ((k = 1; k <= IDLE_SECS; k++)); do
    # Sleep to the k-th second of the window, not 1 s after the last sample.
    sleep "$(awk -v w0="$w0" -v k="$k" -v now="$(date +%s.%N)" 'BEGIN { d = w0 + k - now; printf "%.3f", (d > 0 ? d : 0) }')"
    kill -0 "$pid" 2>/dev/null || { status=EXITED note="exited during the window"; break; }
    cnow=$(ticks "$pid")
    series+=($((cnow - cprev)))
    th=$(threads_of "$pid")
    tseries+=("$th")
    ((th > maxthr)) && maxthr=$th
    slice=$((slice + cnow - cprev))
    cprev=$cnow
    if ((k % 5 == 0)); then
      per5+=("$slice")
      slice=0
      f=$(fds_of "$pid")
      ((f > maxfd)) && maxfd=$f
      thr5+=("$th")
    fi
  done
  c1=$(ticks "$pid")
  w1=$(date +%s.%N)
  la1=$(loadavg)
  lines1=$(wc -l <"$log")
  read -r -a io1 <<<"$(io_of "$pid")"
  ann1=$(announces "$client")
  local window cpu rss hwm fds thr maps kinds
  window=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.1f", b - a }')
  cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
  rss=$(status_kb "$pid" VmRSS)
  hwm=$(status_kb "$pid" VmHWM)
  fds=$(fds_of "$pid")
  ((fds > maxfd)) && maxfd=$fds
  thr=$(threads_of "$pid")
  ((thr > maxthr)) && maxthr=$thr
  read -r -a maps <<<"$(maps_of "$pid")"
  kinds=$(fd_kinds "$pid")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$client" "$NT" "$startup" "$cpu" "$window" "${rss:-0}" \
    "${hwm:-0}" "$fds" "$thr" "${maps[0]}" "$status" >>"$RESULTS"
  echo "  window ${window} s: load average at start $la0, at end $la1"
  echo "  idle CPU ${cpu} s ($(awk -v c="$cpu" -v w="$window" 'BEGIN { printf "%.2f", 100 * c / w }')% of a core); per 5 s (ticks of 1/${HZ} s): ${per5[*]}"
  echo "  busiest second: $(printf '%s\n' "${series[@]}" | sort -n | tail -1) ticks; seconds with any CPU: $(printf '%s\n' "${series[@]}" | awk '$1 > 0' | wc -l) of ${#series[@]}"
  echo "  RSS $((rss / 1024)) MiB (anonymous $(($(status_kb "$pid" RssAnon) / 1024)), file-backed $(($(status_kb "$pid" RssFile) / 1024)); peak $((hwm / 1024)) MiB)"
  echo "  threads $thr (every 5 s: ${thr5[*]}; most in a per-second sample $maxthr)"
  echo "  fds $fds (most seen in the window $maxfd): $kinds"
  echo "  in the window: $((io1[0] - io0[0])) write syscalls, $((io1[1] - io0[1])) bytes written to storage, $((io1[2] - io0[2])) read syscalls (/proc/PID/io)"
  echo "  mapped: ${maps[0]} files under the data directory, ${maps[1]} mappings"
  echo "  log lines in the window: $((lines1 - lines0)) ($(awk -v n=$((lines1 - lines0)) -v w="$window" 'BEGIN { printf "%.0f", n / w }')/s)"
  paste <(printf '%s\n' "${series[@]}") <(printf '%s\n' "${tseries[@]}") >"$LOGS/$client.per-second"
  stop_proc "$pid"
  echo "  stopped (SIGTERM) in ${STOP_SECS} s"
  if [ -n "$tpid" ]; then
    # The stopped announces may still be arriving when the client is gone.
    sleep 1
    echo "  tracker: announces in the window $((ann1 - ann0)); over the whole run $(announces "$client") ($(announce_events "$client"))"
    stop_proc "$tpid"
  fi
  if [ "$client" = libtorrent ]; then
    echo "  libtorrent's own count: $(grep '^ANNOUNCES ' "$log" | tail -1 | cut -d' ' -f3-)"
  fi
  return 0
}

for client in "${CLIENTS[@]}"; do run_client "$client"; done

echo
echo "== $NT torrents seeding, idle ${IDLE_SECS} s, tracker $TRACKER =="
echo "(MB = 10^6 bytes; CPU % of one core over the window; libtorrent = the python3 process hosting the session;"
echo " pix/lt: pixtorrent / libtorrent, below 1.00 is better for pixtorrent)"
"$PY" "$HELPERS/many_report.py" "$RESULTS"
echo "load average after: $(loadavg)"
cp "$RESULTS" "$LOGS/results.tsv"
echo "logs: $BENCH_DIR/many-last-logs"
