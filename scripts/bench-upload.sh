#!/usr/bin/env bash
# Upload benchmark: a python3-libtorrent leecher fetching the same payload from pixtorrent as the only
# seeder, and from a python3-libtorrent seeder as the only seeder, in one run, reported as a ratio
# together with each seeder's CPU and memory.
#
# Usage: scripts/bench-upload.sh [--size-mb N] [--runs N] [--quick] [--timeout SECS] [--seeders LIST]
#   --size-mb N     payload size, the big file's MiB (default 1024); cached under $BENCH_DIR (the same
#                   payload and torrent as scripts/bench-download.sh)
#   --runs N        timed downloads per seeder (default 3); the table shows medians
#   --quick         smoke run of the script itself: --size-mb 64 --runs 1
#   --timeout SECS  bound on each download and on each seeder's start (default 600); a download over
#                   it is reported as TIMEOUT
#   --seeders LIST  comma-separated subset of pixtorrent,libtorrent (default: both)
# Environment: BENCH_DIR (default /tmp/pixtorrent-bench) caches the payload and keeps the last run's
# logs in $BENCH_DIR/last-logs; PIXTORRENT_BIN skips `cargo build --release` and uses that binary;
# PIXTORRENT_SEED_ARGS adds arguments to the pixtorrent seeder (e.g. -v).
#
# What is measured, per run: each seeder is started fresh for the run (pixtorrent
# `--seed --bind 127.0.0.1`, libtorrent via tests/peers/lt_peer.py --seed --recheck), both hash-check
# the data before they count as ready, so the payload is in the page cache for either. Then one
# libtorrent leecher (scripts/bench/lt_leech.py) fetches the torrent over loopback from a fake tracker
# that hands out only that seeder (DHT, LSD, PEX off). Recorded: the leecher's wall time (the whole
# process, /usr/bin/time) and its own download time (`DONE t=`, from its session start), its CPU and
# peak RSS; the seeder's CPU seconds used while the leecher ran (/proc/PID/stat, all threads), its VmRSS
# once ready, and just before it is stopped its VmHWM (peak RSS), VmRSS and RssFile (file-backed pages,
# e.g. a mapped payload) from /proc/PID/status. The seeders alternate (A B, B A, ...). Each download
# is compared byte for byte with the source; a broken download is FAILED and doesn't count.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

PY=/usr/bin/python3
HELPERS=scripts/bench
BENCH_DIR=${BENCH_DIR:-/tmp/pixtorrent-bench}
SIZE_MB=1024
RUNS=3
RUN_TIMEOUT=600
SEEDERS=(pixtorrent libtorrent)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --size-mb) SIZE_MB=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --quick) SIZE_MB=64; RUNS=1 ;;
    --timeout) RUN_TIMEOUT=$2; shift ;;
    --seeders) IFS=, read -r -a SEEDERS <<<"$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for s in "${SEEDERS[@]}"; do
  case $s in pixtorrent | libtorrent) ;; *) echo "unknown seeder: $s" >&2; exit 2 ;; esac
done

# The real programs the benchmark runs (Debian packages).
PACKAGES=(mktorrent python3-libtorrent time)
ensure_packages "${PACKAGES[@]}"
source scripts/bench/common.sh
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
echo "pixtorrent: $PIX; libtorrent $LT_VERSION; $(nproc) cores"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $LOAD_BEFORE (other work on this machine skews the numbers)"

# --- one timed upload ------------------------------------------------------------------------------
RESULTS=$RUN_DIR/results.tsv
: >"$RESULTS"

# start_seeder SEEDER RUN TORRENT PORT: starts the seeder and waits until it serves; sets SEED_PID and
# SEED_READY (seconds from start to ready). Returns 1 (log shown) if it does not get ready in time.
start_seeder() {
  local seeder=$1 run=$2 torrent=$3 port=$4 name=seed-$1-$2 t0 i ok=0
  t0=$(date +%s.%N)
  case $seeder in
    pixtorrent)
      start "$name" env PIXTORRENT_PROGRESS_SECS=1 "$PIX" -t "$torrent" -o "$PAYLOAD/data" --seed \
        --bind 127.0.0.1 --port "$port" "${PIX_EXTRA[@]}"
      SEED_PID=$LAST_PID
      # env execs pixtorrent, so the pid is pixtorrent's. It checks the data, then listens; the first
      # `seeding:` line comes once the check is done (one per PIXTORRENT_PROGRESS_SECS).
      for ((i = 0; i < RUN_TIMEOUT * 10; i++)); do
        kill -0 "$SEED_PID" 2>/dev/null || break
        if grep -q '^seeding:' "$LOGS/$name.log" && port_open "$port"; then ok=1; break; fi
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
        --listen "127.0.0.1:$port" --stats-secs 3600 --ready-timeout "$RUN_TIMEOUT" --max-secs 86400 --parent-pid $$
      SEED_PID=$LAST_PID
      wait_ready "$name" "$RUN_TIMEOUT" >/dev/null || return 1
      ;;
  esac
  SEED_READY=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}

# run_one SEEDER RUN
run_one() {
  local seeder=$1 run=$2
  local dest=$RUN_DIR/dl-$seeder-$run log=$LOGS/leech-$seeder-$run.log tf=$RUN_DIR/time.out
  local rc=0 status=ok note="" wall=0 user=0 sys=0 rss=0 done_s=0 port ft_port torrent
  local cpu0 cpu1 seedcpu hwm=0 vmrss=0 rssfile=0
  # A fake tracker that hands out only this seeder; the seeder gets the same torrent (it announces
  # there and is told about itself, which is harmless).
  port=$(free_port)
  start "tracker-$seeder-$run" "$PY" "$HELPERS/fake_tracker.py" --listen 127.0.0.1:0 --peer "127.0.0.1:$port"
  local tracker_pid=$LAST_PID
  ft_port=$(wait_ready "tracker-$seeder-$run" 10)
  torrent=$RUN_DIR/$seeder-$run.torrent
  "$PY" "$HELPERS/torrent_tool.py" reannounce "$PAYLOAD/base.torrent" "http://127.0.0.1:$ft_port/announce" "$torrent"

  if ! start_seeder "$seeder" "$run" "$torrent" "$port"; then
    printf '%s\t%s\tFAILED\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t%s\n' "$seeder" "$run" "seeder did not get ready" >>"$RESULTS"
    echo "  $seeder run $run/$RUNS: FAILED (seeder did not get ready)"
    stop "$SEED_PID"
    stop "$tracker_pid"
    return
  fi

  mkdir -p "$dest"
  local rss_ready
  rss_ready=$(mem_of "$SEED_PID" | cut -d' ' -f2)
  cpu0=$(cpu_of "$SEED_PID")
  rm -f "$tf"
  local cmd=("$PY" -X faulthandler "$HELPERS/lt_leech.py" --torrent "$torrent" --dir "$dest" --max-secs "$RUN_TIMEOUT")
  echo "command: ${cmd[*]}" >"$log"
  timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%e %U %S %M' -o "$tf" "${cmd[@]}" >>"$log" 2>&1 &
  CUR_PID=$!
  wait "$CUR_PID" || rc=$?
  CUR_PID=""
  cpu1=$(cpu_of "$SEED_PID")
  read -r hwm vmrss rssfile < <(mem_of "$SEED_PID")
  kill -0 "$SEED_PID" 2>/dev/null || note="seeder exited during the run"
  stop "$SEED_PID"
  stop "$tracker_pid"
  seedcpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')

  # /usr/bin/time writes nothing when it is killed along with the client (timeout).
  if [ -s "$tf" ]; then read -r wall user sys rss < <(tail -1 "$tf") || true; fi
  done_s=$(sed -n 's/^DONE t=//p' "$log" | head -1)
  done_s=${done_s:-0}
  if ((rc == 124 || rc == 137)); then
    status=TIMEOUT note="no exit within ${RUN_TIMEOUT}s" wall=$RUN_TIMEOUT
  elif ((rc != 0)); then
    status=FAILED note="exit status $rc"
  else
    local bad
    bad=$(verify "$dest" | head -3 | paste -sd ';' -)
    if [ -n "$bad" ]; then status=FAILED note="verify: $bad"; fi
    # Every block must have come from the seeder under test.
    local others
    others=$(grep '^PEER ' "$log" | grep -v "^PEER 127.0.0.1:$port " | paste -sd ';' - || true)
    if [ -n "$others" ]; then status=FAILED note="blocks from other peers: $others"; fi
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$seeder" "$run" "$status" "$wall" "$done_s" \
    "$user" "$sys" "$rss" "$seedcpu" "$hwm" "$vmrss" "$rssfile" "$SEED_READY" "$rss_ready" "$note" >>"$RESULTS"
  if [ "$status" = ok ]; then
    awk -v c="$seeder" -v r="$run" -v n="$RUNS" -v w="$wall" -v d="$done_s" -v b="$PAYLOAD_BYTES" -v sc="$seedcpu" \
      -v h="$hwm" -v f="$rssfile" -v u="$user" -v s="$sys" -v rd="$SEED_READY" -v r0="$rss_ready" 'BEGIN {
        printf "  %-10s run %d/%d: %6.2f s (DONE %6.2f s) %4.0f MB/s  seeder: CPU %.2f s, RSS %.0f MB when ready, peak %.0f MB (file %.0f MB), ready in %.1f s  leecher CPU %.2f s\n",
        c, r, n, w, d, b / w / 1e6, sc, r0 / 1024, h / 1024, f / 1024, rd, u + s }'
  else
    echo "  $seeder run $run/$RUNS: $status ($note) after ${wall}s; log: $BENCH_DIR/last-logs/$(basename "$log")"
    tail -5 "$log" | sed 's/^/      | /'
  fi
  rm -rf "$dest"
  sync
}

echo
echo "== upload to one libtorrent leecher over loopback ($RUNS runs per seeder, timeout ${RUN_TIMEOUT}s) =="
for ((run = 1; run <= RUNS; run++)); do
  order=("${SEEDERS[@]}")
  if ((run % 2 == 0)); then
    order=()
    for ((i = ${#SEEDERS[@]} - 1; i >= 0; i--)); do order+=("${SEEDERS[i]}"); done
  fi
  for seeder in "${order[@]}"; do run_one "$seeder" "$run"; done
done

echo
echo "MB = 10^6 bytes, GB = 10^9 bytes; medians over successful runs, peak RSS: the largest."
echo "leecher: python3-libtorrent $LT_VERSION (lt_leech.py); libtorrent seeder: python3-libtorrent $LT_VERSION"
echo "(lt_peer.py; CPU and RSS of the python process hosting libtorrent); $(nproc) cores."
echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
cp "$RESULTS" "$LOGS/results.tsv"
"$PY" - "$RESULTS" "$PAYLOAD_BYTES" <<'EOF'
import statistics
import sys

path, size = sys.argv[1], int(sys.argv[2])
gb = size / 1e9
runs = {}
for line in open(path):
    f = line.rstrip("\n").split("\t")
    runs.setdefault(f[0], []).append(f)
print(f"\n== upload: payload {size / 1e6:.1f} MB ==")
print("(RSS file = the payload's pages mapped by the seeder (both mmap it), anon = the rest; largest of the runs)")
hdr = ("seeder", "ok/runs", "wall s", "MB/s", "DONE s", "seeder CPU s/GB", "seeder peak RSS MB",
       "RSS at end: file/anon MB", "seeder ready s", "leecher CPU s/GB", "walls (all runs)")
rows, med, done = [], {}, {}
for seeder, rs in runs.items():
    ok = [r for r in rs if r[2] == "ok"]
    walls = " ".join(f"{float(r[3]):.2f}" if r[2] == "ok" else r[2] for r in rs)
    if not ok:
        rows.append((seeder, f"0/{len(rs)}", "FAILED", "-", "-", "-", "-", "-", "-", "-", walls))
        continue
    med[seeder] = statistics.median(float(r[3]) for r in ok)
    done[seeder] = statistics.median(float(r[4]) for r in ok)
    scpu = statistics.median(float(r[8]) / gb for r in ok)
    hwm = max(int(r[9]) for r in ok) / 1024
    rfile = max(int(r[11]) for r in ok) / 1024
    anon = max(int(r[10]) - int(r[11]) for r in ok) / 1024
    ready = statistics.median(float(r[12]) for r in ok)
    lcpu = statistics.median((float(r[5]) + float(r[6])) / gb for r in ok)
    rows.append((seeder, f"{len(ok)}/{len(rs)}", f"{med[seeder]:.2f}", f"{size / med[seeder] / 1e6:.0f}",
                 f"{done[seeder]:.2f}", f"{scpu:.2f}", f"{hwm:.0f}", f"{rfile:.0f}/{anon:.0f}", f"{ready:.1f}",
                 f"{lcpu:.2f}", walls))
widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
for r in (hdr, *rows):
    print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())
if "pixtorrent" in med and "libtorrent" in med:
    print(f"pixtorrent seeder vs libtorrent seeder: {med['libtorrent'] / med['pixtorrent']:.2f}x "
          f"(>1 = pixtorrent faster; median leecher wall time)")
    print(f"  by the leecher's own DONE time: {done['libtorrent'] / done['pixtorrent']:.2f}x")
else:
    print("pixtorrent seeder vs libtorrent seeder: n/a (no successful run of one of them)")
EOF
