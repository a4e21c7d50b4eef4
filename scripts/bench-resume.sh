#!/usr/bin/env bash
# Fast-resume benchmark (issue 16): how long a completed download takes to restart with its resume
# file, against the full re-check (--recheck), for one payload, in one run. Warm page cache first,
# then cold (page cache dropped before each start; needs root, else skipped). The torrent is made
# here from random data already in place, and pixtorrent is given an unreachable --peer only so that
# it has a source: a complete torrent exits before any traffic.
#
# Usage: scripts/bench-resume.sh [--size-mb N] [--runs N]
#   --size-mb N   payload size in MiB (default 1024)
#   --runs N      starts per mode and cache state (default 3)
# Environment: PIXTORRENT_BIN skips `cargo build --release` and uses that binary; BENCH_DIR (default
# /tmp/pixtorrent-bench) holds the payload while the script runs.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=1024
RUNS=3
while (($#)); do
  case $1 in
    --size-mb) SIZE_MB=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [[ -z ${PIXTORRENT_BIN:-} ]]; then
  cargo build --release --quiet
  PIXTORRENT_BIN=target/release/pixtorrent
fi
work=$(mktemp -d "${BENCH_DIR:-/tmp/pixtorrent-bench}.resume.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data/item"
head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom >"$work/data/item/big.bin"
head -c 1000 /dev/urandom >"$work/data/item/small.txt"
"$PIXTORRENT_BIN" create "$work/data/item" -o "$work/t.torrent" >/dev/null
export XDG_STATE_HOME="$work/state" PIXTORRENT_NO_DHT=1 PIXTORRENT_FORBID_PUBLIC_DHT=1

# start [ARGS…]: one start of the complete download; prints its wall seconds.
start() {
  local t0 t1
  t0=$(date +%s.%N)
  "$PIXTORRENT_BIN" -t "$work/t.torrent" -o "$work/data" --peer 127.0.0.1:9 --port 0 "$@" >"$work/out" 2>&1 ||
    { echo "pixtorrent failed:" >&2; cat "$work/out" >&2; exit 1; }
  t1=$(date +%s.%N)
  grep -q 'pieces already on disk: \([0-9]*\)/\1$' "$work/out" ||
    { echo "not every piece was on disk:" >&2; cat "$work/out" >&2; exit 1; }
  echo "$t1 - $t0" | bc
}
drop() { sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

start >/dev/null # the first start hashes everything and writes the resume file
caches=(warm)
drop && caches+=(cold) || echo "(cold cache skipped: cannot drop the page cache)"
echo "payload: $SIZE_MB MiB; $RUNS starts each; $(nproc) cores"
printf '%-6s %-12s %-12s %s\n' cache "resume s" "--recheck s" "resume / recheck"
for cache in "${caches[@]}"; do
  : >"$work/resume" && : >"$work/recheck"
  for _ in $(seq 1 "$RUNS"); do
    [[ $cache == cold ]] && drop
    start --recheck >>"$work/recheck"
    [[ $cache == cold ]] && drop
    start >>"$work/resume"
  done
  r=$(median <"$work/resume")
  f=$(median <"$work/recheck")
  printf '%-6s %-12.3f %-12.3f %.3f\n' "$cache" "$r" "$f" "$(echo "$r / $f" | bc -l)"
done
