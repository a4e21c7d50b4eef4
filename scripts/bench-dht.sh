#!/usr/bin/env bash
# DHT benchmark (BEP 5): a magnet link with no tracker, found only through a local DHT of 16
# python3-libtorrent sessions on 127.0.0.1 (tests/peers/lt_dht.py, the last one seeding), for
# pixtorrent and python3-libtorrent side by side in one run: the time to the first peer, to the
# metadata and to the complete download. Every run gets a fresh DHT (dead nodes and peers of an
# earlier client would slow the next one), and each client starts with an empty routing table and
# one bootstrap node (the DHT's node 0); the public routers are never contacted.
#
# Usage: scripts/bench-dht.sh [--size-mb N] [--runs N]
#   --size-mb N   payload size in MiB (default 64)
#   --runs N      runs per client, alternating (default 3); the table shows medians
# Environment: PIXTORRENT_BIN skips `cargo build --release` and uses that binary.
#
# pixtorrent: started with -v; first peer = the timestamp of its first `connected ... source=dht`
# log line; metadata = the modification time of the DIR/NAME.torrent it saves once the metadata
# checks out; complete = the process's exit. libtorrent (scripts/bench/lt_dht_magnet.py): the first
# status with num_peers > 0, has_metadata, is_seeding, polled every 10 ms from the session's
# creation. Each download is compared with the payload (cmp); a run that differs is FAILED.
set -euo pipefail
# The DHT stays off: a demo or benchmark never reaches the public DHT routers.
export PIXTORRENT_NO_DHT=1 PIXTORRENT_FORBID_PUBLIC_DHT=1
cd "$(dirname "$0")/.."
source scripts/lib.sh

SIZE_MB=64
RUNS=3
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --size-mb) SIZE_MB=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for n in "$SIZE_MB" "$RUNS"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "not a positive number: $n" >&2; exit 2; }
done
ensure_packages python3-libtorrent
if [[ -z ${PIXTORRENT_BIN:-} ]]; then
  cargo build --release --quiet
  PIXTORRENT_BIN=target/release/pixtorrent
fi
PY=/usr/bin/python3

work=$(mktemp -d /tmp/pixtorrent-bench-dht.XXXXXX)
dht_pid=""
cleanup() {
  if [[ -n $dht_pid ]]; then kill "$dht_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/seed/bench-dht"
head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom >"$work/seed/bench-dht/data.bin"
"$PIXTORRENT_BIN" create "$work/seed/bench-dht" -o "$work/t.torrent" >/dev/null
hash=$("$PIXTORRENT_BIN" --info --json "$work/t.torrent" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["info_hash"])')
magnet="magnet:?xt=urn:btih:$hash"

# start_dht: a fresh local DHT (so no run meets the dead nodes and peers of an earlier one); sets
# node0 and dht_pid.
start_dht() {
  rm -f "$work/dht.in"
  mkfifo "$work/dht.in"
  "$PY" tests/peers/lt_dht.py --nodes 16 --seed-torrent "$work/t.torrent" --seed-dir "$work/seed" \
    --parent-pid $$ --max-secs 900 <"$work/dht.in" >"$work/dht.log" 2>&1 &
  dht_pid=$!
  exec 9>"$work/dht.in" # holds the DHT's stdin open until stop_dht
  for _ in $(seq 1 600); do
    grep -q '^READY' "$work/dht.log" && break
    sleep 0.1
  done
  ready=$(grep '^READY' "$work/dht.log") || { echo "the local DHT did not settle" >&2; cat "$work/dht.log" >&2; exit 1; }
  node0=$(sed -n 's/.*node0=\([^ ]*\).*/\1/p' <<<"$ready")
}
stop_dht() {
  exec 9>&-
  wait "$dht_pid" 2>/dev/null || true
  dht_pid=""
}
echo "payload: $SIZE_MB MiB, info-hash $hash; a fresh local DHT of 16 libtorrent sessions for every run"
echo "pixtorrent: $PIXTORRENT_BIN; python3-libtorrent $("$PY" -c 'import libtorrent; print(libtorrent.__version__)'); $(nproc) cores"

epoch() { date +%s.%N; }
# keep WHAT LOG: a failed run's log outlives the work directory (in $BENCH_DIR/bench-dht-failed/),
# and its last lines go to stderr.
keep() {
  local dir=${BENCH_DIR:-/tmp/pixtorrent-bench}/bench-dht-failed
  mkdir -p "$dir"
  cp "$2" "$dir/" 2>/dev/null || true
  cp "$work/dht.log" "$dir/dht-$(basename "$2").log" 2>/dev/null || true
  echo "$1 failed; last lines of its log (kept in $dir):" >&2
  tail -n 8 "$2" >&2 || true
}
results="$work/results"
: >"$results"
for run in $(seq 1 "$RUNS"); do
  # pixtorrent, with an empty state directory (no saved table).
  start_dht
  out="$work/px-$run"
  t0=$(epoch)
  if env -u PIXTORRENT_NO_DHT XDG_STATE_HOME="$work/state-$run" timeout 120 "$PIXTORRENT_BIN" "$magnet" -o "$out" \
    --port 0 --bind 127.0.0.1 --dht-bootstrap "$node0" -v >"$work/px-$run.out" 2>"$work/px-$run.err"; then
    t1=$(epoch)
    peer_at=$(grep -m1 'connected peer=.*source=dht' "$work/px-$run.err" | cut -d' ' -f1)
    peer=$("$PY" -c "import sys,datetime; print(datetime.datetime.fromisoformat(sys.argv[1].replace('Z','+00:00')).timestamp() - float(sys.argv[2]))" "$peer_at" "$t0")
    meta=$("$PY" -c "import os,sys,glob; print(os.path.getmtime(glob.glob(sys.argv[1] + '/*.torrent')[0]) - float(sys.argv[2]))" "$out" "$t0")
    status=ok
    cmp -s "$out/bench-dht/data.bin" "$work/seed/bench-dht/data.bin" || status=FAILED
    printf 'pixtorrent %s %.3f %.3f %.3f\n' "$status" "$peer" "$meta" "$("$PY" -c "import sys; print(float(sys.argv[1]) - float(sys.argv[2]))" "$t1" "$t0")" | tee -a "$results"
  else
    rc=$?
    echo "pixtorrent FAILED - - -" | tee -a "$results"
    keep "pixtorrent run $run (exit status $rc)" "$work/px-$run.err"
  fi
  stop_dht
  # libtorrent, a fresh session.
  start_dht
  out="$work/lt-$run"
  mkdir -p "$out"
  if "$PY" scripts/bench/lt_dht_magnet.py --magnet "$magnet" --dir "$out" --bootstrap "$node0" --max-secs 120 >"$work/lt-$run.out" 2>&1; then
    get() { sed -n "s/^$1 t=//p" "$work/lt-$run.out"; }
    status=ok
    cmp -s "$out/bench-dht/data.bin" "$work/seed/bench-dht/data.bin" || status=FAILED
    printf 'libtorrent %s %.3f %.3f %.3f\n' "$status" "$(get PEER)" "$(get METADATA)" "$(get DONE)" | tee -a "$results"
  else
    rc=$?
    echo "libtorrent FAILED - - -" | tee -a "$results"
    keep "libtorrent run $run (exit status $rc)" "$work/lt-$run.out"
  fi
  stop_dht
done
"$PY" - "$results" <<'PYEOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = {}
print("\nclient      ok/runs  first peer s  metadata s  complete s   (medians of successful runs)")
for c in ("pixtorrent", "libtorrent"):
    ok = [r for r in rows if r[0] == c and r[1] == "ok"]
    n = len([r for r in rows if r[0] == c])
    if not ok:
        print(f"{c:<11} 0/{n}")
        continue
    m = [statistics.median(float(r[i]) for r in ok) for i in (2, 3, 4)]
    med[c] = m
    print(f"{c:<11} {len(ok)}/{n}      {m[0]:<13.3f} {m[1]:<11.3f} {m[2]:.3f}")
if len(med) == 2:
    r = [p / l if l > 0 else float("nan") for p, l in zip(med["pixtorrent"], med["libtorrent"])]
    print(f"\npixtorrent / libtorrent (below 1.00 is better for pixtorrent): first peer {r[0]:.2f}, metadata {r[1]:.2f}, complete {r[2]:.2f}")
PYEOF
