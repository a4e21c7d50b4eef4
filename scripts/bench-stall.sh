#!/usr/bin/env bash
# Stalled-peer benchmark (issue 12): how much eight peers that never send a block slow a download.
# A 4.2 MB item in 65 pieces of 64 KiB has one honest python3-libtorrent seeder held to 1 MiB/s (alone
# it serves the item in about 4 s). pixtorrent and a python3-libtorrent leecher each download it with
# that seeder alone ("clean") and with eight black-hole peers beside it (tests/peers/blackhole.py:
# handshake, full bitfield, unchoke, then read every request and never answer), in one run, 3 runs
# each. Prints the medians, the ratio with black holes / clean per client, the slowest run and how
# many runs with black holes took over 1.5x the clean median; the goal for pixtorrent is at most 1.5x.
#
# Usage: scripts/bench-stall.sh [--runs N] [--holes N] [--rate BYTES] [--clients LIST] [--timeout SECS]
#                               [--quick]
#   --runs N        timed downloads per client and condition (default 3); the table shows medians
#   --holes N       black-hole peers in the "with black holes" condition (default 8)
#   --rate BYTES    the honest seeder's upload limit in bytes/s (default 1048576)
#   --clients LIST  comma-separated subset of pixtorrent,libtorrent (default: both)
#   --timeout SECS  bound on each download (default 120); a download over it is reported as TIMEOUT
#   --hole-args ARGS  more arguments for tests/peers/blackhole.py (e.g. "--no-ext": no BEP 10 handshake)
#   --quick         smoke run of the script itself: --runs 1
# Environment: BENCH_DIR (default /tmp/pixtorrent-bench) caches the payload and keeps the last run's
# logs in $BENCH_DIR/last-logs; PIXTORRENT_BIN skips `cargo build --release` and uses that binary.
#
# Per run and condition: a fresh honest seeder (tests/peers/lt_peer.py --seed --upload-limit), fresh
# black holes, and a fake tracker (scripts/bench/fake_tracker.py) that hands out exactly the seeder
# and the black holes; everything on 127.0.0.1; libtorrent with DHT, LSD, UPnP, NAT-PMP, uTP and PEX
# off. Timed: the leecher's whole process (/usr/bin/time). The conditions alternate (clean first on
# odd runs). Each download is compared byte for byte with the source, and the seeder must have
# uploaded the whole item (every block came from it).
set -euo pipefail
# The DHT stays off: a demo or benchmark never reaches the public DHT routers.
export PIXTORRENT_NO_DHT=1 PIXTORRENT_FORBID_PUBLIC_DHT=1
cd "$(dirname "$0")/.."
source scripts/lib.sh

PY=/usr/bin/python3
HELPERS=scripts/bench
BENCH_DIR=${BENCH_DIR:-/tmp/pixtorrent-bench}
SIZE_MB=4 # + the small files: 4,257,642 bytes, 65 pieces of 64 KiB
RUNS=3
HOLES=8
RATE=1048576
RUN_TIMEOUT=120
CLIENTS=(pixtorrent libtorrent)
HOLE_ARGS=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift ;;
    --holes) HOLES=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --clients) IFS=, read -r -a CLIENTS <<<"$2"; shift ;;
    --timeout) RUN_TIMEOUT=$2; shift ;;
    --hole-args) read -r -a HOLE_ARGS <<<"$2"; shift ;;
    --quick) RUNS=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for c in "${CLIENTS[@]}"; do
  case $c in pixtorrent | libtorrent) ;; *) echo "unknown client: $c" >&2; exit 2 ;; esac
done
[[ " ${CLIENTS[*]} " == *" pixtorrent "* ]] || PIXTORRENT_BIN=${PIXTORRENT_BIN:-/bin/true}

PACKAGES=(mktorrent python3-libtorrent time)
ensure_packages "${PACKAGES[@]}"
source scripts/bench/common.sh

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

# The item of common.sh (SIZE_MB=4) with 64 KiB pieces: the issue's shape.
TORRENT=$PAYLOAD/stall-64k.torrent
if [ ! -f "$TORRENT" ]; then
  mktorrent -l 16 -a http://127.0.0.1:1/announce -n "$NAME" -o "$TORRENT" "$SRC" >/dev/null
fi
STALL_HASH=$("$PY" "$HELPERS/torrent_tool.py" infohash "$TORRENT")
PIECES=$(((PAYLOAD_BYTES + 65535) / 65536))
LT_VERSION=$("$PY" -c 'import libtorrent; print(libtorrent.__version__)')
echo "payload: $SRC, $NFILES files, $PAYLOAD_BYTES bytes, $PIECES pieces of 64 KiB, info-hash $STALL_HASH"
echo "pixtorrent: $PIX; libtorrent $LT_VERSION; $(nproc) cores; honest seeder at $RATE B/s; $HOLES black holes"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $LOAD_BEFORE (other work on this machine skews the numbers)"

RESULTS=$RUN_DIR/results.tsv
: >"$RESULTS"

# run_one COND CLIENT RUN: COND is clean or holes.
run_one() {
  local cond=$1 client=$2 run=$3 tag=$1-$2-$3
  local dest=$RUN_DIR/dl-$tag log=$LOGS/leech-$tag.log tf=$RUN_DIR/time.out
  local rc=0 status=ok note="" wall=0 seed_port seed_pid holes_pid="" ft_pid ft_port torrent peers=() requests=0
  seed_port=$(free_port)
  start "seed-$tag" "$PY" tests/peers/lt_peer.py --seed --torrent "$TORRENT" --dir "$PAYLOAD/data" \
    --listen "127.0.0.1:$seed_port" --upload-limit "$RATE" --no-tracker-wait --stats-secs 3600 \
    --max-secs 3600 --parent-pid $$
  seed_pid=$LAST_PID
  peers=(--peer "127.0.0.1:$seed_port")
  if [ "$cond" = holes ]; then
    start "holes-$tag" "$PY" tests/peers/blackhole.py --info-hash "$STALL_HASH" --pieces "$PIECES" \
      --count "$HOLES" --max-secs 3600 --parent-pid $$ "${HOLE_ARGS[@]}"
    holes_pid=$LAST_PID
    local line="" i
    for ((i = 0; i < 100; i++)); do
      line=$(grep -m1 '^READY ports=' "$LOGS/holes-$tag.log" || true)
      [ -n "$line" ] && break
      sleep 0.1
    done
    [ -n "$line" ] || { echo "black holes did not get ready" >&2; tail "$LOGS/holes-$tag.log" >&2; exit 1; }
    local p
    for p in $(tr ',' ' ' <<<"${line#READY ports=}"); do peers+=(--peer "127.0.0.1:$p"); done
  fi
  start "tracker-$tag" "$PY" "$HELPERS/fake_tracker.py" --listen 127.0.0.1:0 "${peers[@]}"
  ft_pid=$LAST_PID
  ft_port=$(wait_ready "tracker-$tag" 10)
  torrent=$RUN_DIR/$tag.torrent
  "$PY" "$HELPERS/torrent_tool.py" reannounce "$TORRENT" "http://127.0.0.1:$ft_port/announce" "$torrent"
  wait_ready "seed-$tag" 60 >/dev/null || exit 1

  mkdir -p "$dest"
  local cmd=()
  case $client in
    pixtorrent) cmd=("$PIX" -t "$torrent" -o "$dest" --port 0 --bind 127.0.0.1 -v) ;;
    libtorrent) cmd=("$PY" -X faulthandler "$HELPERS/lt_leech.py" --torrent "$torrent" --dir "$dest" --max-secs "$RUN_TIMEOUT") ;;
  esac
  rm -f "$tf"
  echo "command: ${cmd[*]}" >"$log"
  timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%e %U %S %M' -o "$tf" "${cmd[@]}" >>"$log" 2>&1 &
  CUR_PID=$!
  wait "$CUR_PID" || rc=$?
  CUR_PID=""
  [ -n "$holes_pid" ] && stop "$holes_pid"
  stop "$seed_pid"
  stop "$ft_pid"
  if [ -s "$tf" ]; then read -r wall _ < <(tail -1 "$tf") || true; fi
  if [ "$cond" = holes ]; then
    requests=$(sed -n 's/^EXIT .*requests=//p' "$LOGS/holes-$tag.log" | head -1)
    requests=${requests:-0}
  fi
  local up
  up=$(sed -n 's/^EXIT up=\([0-9]*\) .*/\1/p' "$LOGS/seed-$tag.log" | head -1)
  up=${up:-0}
  run_status "$rc" "$dest"
  status=$STATUS note=$NOTE
  if [ "$status" = TIMEOUT ]; then wall=$RUN_TIMEOUT; fi
  if [ "$status" = ok ] && ((up < PAYLOAD_BYTES)); then
    status=FAILED note="the honest seeder uploaded only $up bytes"
  fi
  local snubs
  snubs=$(grep -c 'snubbed' "$log" || true)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$cond" "$client" "$run" "$status" "$wall" "$requests" "$up" \
    "$snubs" "$note" >>"$RESULTS"
  if [ "$status" = ok ]; then
    printf '  %-10s %-6s run %d/%d: %6.2f s  (black holes got %s requests; seeder sent %s bytes%s)\n' \
      "$client" "$cond" "$run" "$RUNS" "$wall" "$requests" "$up" \
      "$([ "$client" = pixtorrent ] && echo "; $snubs snub lines")"
  else
    echo "  $client $cond run $run/$RUNS: $status ($note) after ${wall}s; log: $BENCH_DIR/last-logs/$(basename "$log")"
    tail -5 "$log" | sed 's/^/      | /'
  fi
  rm -rf "$dest"
}

echo
echo "== $PIECES x 64 KiB from one seeder at $RATE B/s, clean and with $HOLES black holes ($RUNS runs each, timeout ${RUN_TIMEOUT}s) =="
for ((run = 1; run <= RUNS; run++)); do
  conds=(clean holes)
  ((run % 2 == 0)) && conds=(holes clean)
  for client in "${CLIENTS[@]}"; do
    for cond in "${conds[@]}"; do run_one "$cond" "$client" "$run"; done
  done
done

echo
echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
cp "$RESULTS" "$LOGS/results.tsv"
"$PY" - "$RESULTS" "$HOLES" <<'EOF'
import statistics
import sys

path, holes = sys.argv[1], sys.argv[2]
runs = {}
for line in open(path):
    f = line.rstrip("\n").split("\t")
    runs.setdefault(f[1], {}).setdefault(f[0], []).append(f)
print(f"\n== stalled peers: download time, clean vs with {holes} black holes ==")
hdr = ("client", "clean s", "black holes s", "ratio", "worst s", "worst ratio", "over 1.5x", "ok/runs",
       "clean (all runs)", "black holes (all runs)")
rows = []
for client, conds in runs.items():
    med, ok, alls = {}, {}, {}
    for cond in ("clean", "holes"):
        rs = conds.get(cond, [])
        ok[cond] = [float(r[4]) for r in rs if r[3] == "ok"]
        med[cond] = statistics.median(ok[cond]) if ok[cond] else None
        alls[cond] = " ".join(f"{float(r[4]):.2f}" if r[3] == "ok" else r[3] for r in rs)
    total = sum(len(conds.get(c, [])) for c in ("clean", "holes"))
    oks = len(ok["clean"]) + len(ok["holes"])
    fmt = lambda v: f"{v:.2f}" if v is not None else "FAILED"
    ratio = worst_ratio = over = "n/a"
    # A failed or timed-out run with black holes counts as over the goal.
    failed = len(conds.get("holes", [])) - len(ok["holes"])
    worst = max(ok["holes"]) if ok["holes"] else None
    if med["clean"] and med["holes"]:
        ratio = f"{med['holes'] / med['clean']:.2f}"
        worst_ratio = f"{worst / med['clean']:.2f}"
        n = sum(1 for t in ok["holes"] if t > 1.5 * med["clean"]) + failed
        over = f"{n}/{len(conds.get('holes', []))}"
    rows.append((client, fmt(med["clean"]), fmt(med["holes"]), ratio, fmt(worst), worst_ratio, over,
                 f"{oks}/{total}", alls["clean"], alls["holes"]))
widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
for r in (hdr, *rows):
    print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())
print("ratio = median with black holes / median clean; worst ratio = slowest run with black holes / median")
print("clean; over 1.5x = runs with black holes slower than 1.5 x the clean median (failed ones included).")
print("Goal for pixtorrent: at most 1.50 in every run. The stall is a race (which blocks the black holes")
print("hold when the endgame starts): more --runs show it better.")
EOF
