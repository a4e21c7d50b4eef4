#!/usr/bin/env bash
# Magnet benchmark (BEP 9): pixtorrent, python3-libtorrent and aria2c each given only a magnet link
# (magnet:?xt=urn:btih:HEX&tr=http://127.0.0.1:PORT/announce, no .torrent) to the same local swarm, one
# after another, in one run: the time to the metadata, the time to the complete download, and peak RSS,
# reported with ratios pixtorrent / libtorrent and pixtorrent / aria2c.
#
# Usage: scripts/bench-magnet.sh [--size-mb N] [--runs N] [--seeders N] [--quick] [--timeout SECS]
#                                [--clients LIST]
#   --size-mb N     payload size, the big file's MiB (default 256, or $SIZE_MB); cached under $BENCH_DIR
#   --runs N        timed downloads per client (default 3); the table shows medians
#   --seeders N     python3-libtorrent seeders behind the tracker (default 1)
#   --quick         smoke run of the script itself: --size-mb 64 --runs 1
#   --timeout SECS  bound on each download (default 300); a run over it is reported as TIMEOUT
#   --clients LIST  comma-separated subset of pixtorrent,libtorrent,aria2c (default: all three)
# Environment: SIZE_MB (as --size-mb); BENCH_DIR (default /tmp/pixtorrent-bench) caches the payload
# (the same one as bench-download.sh) and keeps the last run's logs in $BENCH_DIR/last-logs;
# PIXTORRENT_BIN skips `cargo build --release` and uses that binary.
#
# The swarm: Debian's opentracker on 127.0.0.1 (whitelist: the payload's info-hash) and the seeders
# (tests/peers/lt_peer.py --seed --recheck: the payload is in the page cache before the first run),
# DHT, LSD, UPnP, NAT-PMP, uTP off. Each client gets a fresh output directory; the runs go round the
# clients (run 1 of each, then run 2 of each, ...). Timed from the moment the client is started:
#   metadata   when the metadata is in: pixtorrent's DIR/NAME.torrent, which it writes as soon as the
#              fetched metadata checks out (its modification time); aria2c's DIR/HEX.torrent
#              (--bt-save-metadata; its modification time); libtorrent: the first torrent_status with
#              has_metadata (scripts/bench/lt_magnet.py polls every 10 ms, after `import libtorrent`
#              and the session start, which are on the clock as every client's own start-up is).
#              aria2c works in 1 s ticks: it dials the tracker's peers a tick after the announce, and
#              its info log shows the ut_metadata piece in about 1 s before it checks and saves it
#              (the time here is the save: only then does its download start)
#   complete   the whole client process (start, metadata, download, verify, exit; aria2c with
#              --seed-time=0, libtorrent until is_seeding) plus a `sync` run the moment it exits, as in
#              bench-download.sh (pixtorrent fdatasyncs before it exits, the others leave dirty pages)
# User+sys CPU and peak RSS come from /usr/bin/time (for libtorrent: the python process hosting it).
# Each download is compared byte for byte (cmp) with the payload, and the .torrent pixtorrent and
# aria2c saved must have the payload's info-hash; a run that fails either check is FAILED and does not
# count.
set -euo pipefail
# The DHT stays off: a demo or benchmark never reaches the public DHT routers.
export PIXTORRENT_NO_DHT=1 PIXTORRENT_FORBID_PUBLIC_DHT=1
cd "$(dirname "$0")/.."
source scripts/lib.sh

PY=/usr/bin/python3
HELPERS=scripts/bench
BENCH_DIR=${BENCH_DIR:-/tmp/pixtorrent-bench}
SIZE_MB=${SIZE_MB:-256}
RUNS=3
SEEDERS=1
RUN_TIMEOUT=300
CLIENTS=(pixtorrent libtorrent aria2c)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --size-mb) SIZE_MB=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --seeders) SEEDERS=$2; shift ;;
    --quick) SIZE_MB=64; RUNS=1 ;;
    --timeout) RUN_TIMEOUT=$2; shift ;;
    --clients) IFS=, read -r -a CLIENTS <<<"$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for c in "${CLIENTS[@]}"; do
  case $c in pixtorrent | libtorrent | aria2c) ;; *) echo "unknown client: $c" >&2; exit 2 ;; esac
done
for n in "$SIZE_MB" "$RUNS" "$SEEDERS" "$RUN_TIMEOUT"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "not a positive number: $n" >&2; exit 2; }
done
[[ " ${CLIENTS[*]} " == *" pixtorrent "* ]] || PIXTORRENT_BIN=${PIXTORRENT_BIN:-/bin/true}

PACKAGES=(opentracker mktorrent aria2 python3-libtorrent time)
ensure_packages "${PACKAGES[@]}"
source scripts/bench/common.sh

LT_VERSION=$("$PY" -c 'import libtorrent; print(libtorrent.__version__)')
ARIA2_VERSION=$(aria2c --version | head -1 | awk '{ print $3 }')
echo "payload: $SRC, $NFILES files, $PAYLOAD_BYTES bytes, info-hash $INFOHASH"
echo "pixtorrent: $PIX; python3-libtorrent $LT_VERSION; aria2c $ARIA2_VERSION; $(nproc) cores"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $LOAD_BEFORE (other work on this machine skews the numbers)"

# --- the swarm: opentracker and the libtorrent seeders ---------------------------------------------
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
ANNOUNCE=http://127.0.0.1:$OT_PORT/announce
T_SEED=$RUN_DIR/seed.torrent
"$PY" "$HELPERS/torrent_tool.py" reannounce "$PAYLOAD/base.torrent" "$ANNOUNCE" "$T_SEED"

# Seeders hash-check their data before READY (and have announced), so no timed run pays for the
# seeders' first reads and the tracker knows them before the first client asks.
for ((i = 1; i <= SEEDERS; i++)); do
  start "seeder$i" "$PY" tests/peers/lt_peer.py --seed --recheck --torrent "$T_SEED" --dir "$PAYLOAD/data" \
    --listen "127.0.0.1:$(free_port)" --stats-secs 3600 --ready-timeout 600 --max-secs 86400 --parent-pid $$
done
SEED_ADDRS=()
for ((i = 1; i <= SEEDERS; i++)); do SEED_ADDRS+=("127.0.0.1:$(wait_ready "seeder$i" 600)"); done
MAGNET="magnet:?xt=urn:btih:$INFOHASH&tr=$ANNOUNCE"
echo "seeders: ${SEED_ADDRS[*]} (python3-libtorrent), tracker: opentracker on 127.0.0.1:$OT_PORT"
echo "magnet link: $MAGNET"

# --- one timed download ----------------------------------------------------------------------------
RESULTS=$RUN_DIR/results.tsv
: >"$RESULTS"

# since T0 EPOCH: seconds from T0 to EPOCH (both date +%s.%N style).
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# run_one CLIENT RUN
run_one() {
  local client=$1 run=$2
  local dest=$RUN_DIR/dl-$client-$run log=$LOGS/$client-$run.log tf=$RUN_DIR/time.out
  local cmd=() rc=0 status note t0 t1 sync0 syncs meta_epoch="" meta="" done_s user=0 sys=0 rss=0 saved=""
  mkdir -p "$dest"
  case $client in
    pixtorrent)
      cmd=("$PIX" -t "$MAGNET" -o "$dest" --port 0 --bind 127.0.0.1)
      saved=$dest/$NAME.torrent ;;
    aria2c)
      cmd=(aria2c --no-conf=true --seed-time=0 --enable-dht=false --enable-dht6=false --bt-enable-lpd=false
        --enable-peer-exchange=false --bt-tracker-connect-timeout=10 --bt-tracker-timeout=10
        --file-allocation=falloc --listen-port="$(free_port)" --summary-interval=0 --console-log-level=notice
        --allow-overwrite=true --auto-file-renaming=false --bt-save-metadata=true -d "$dest" "$MAGNET")
      saved=$dest/$INFOHASH.torrent ;;
    libtorrent)
      cmd=("$PY" -X faulthandler "$HELPERS/lt_magnet.py" --magnet "$MAGNET" --dir "$dest" --max-secs "$RUN_TIMEOUT") ;;
  esac
  rm -f "$tf"
  echo "command: ${cmd[*]}" >"$log"
  t0=$(date +%s.%N)
  timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%e %U %S %M' -o "$tf" "${cmd[@]}" >>"$log" 2>&1 &
  CUR_PID=$!
  wait "$CUR_PID" || rc=$?
  CUR_PID=""
  # Until the data is on disk: what the client left dirty is written now, on the clock.
  sync0=$(date +%s.%N)
  sync
  t1=$(date +%s.%N)
  syncs=$(since "$sync0" "$t1")
  done_s=$(since "$t0" "$t1")
  # /usr/bin/time writes nothing when it is killed along with the client (timeout).
  if [ -s "$tf" ]; then read -r _ user sys rss < <(tail -1 "$tf") || true; fi
  if [ -n "$saved" ]; then
    [ -f "$saved" ] && meta_epoch=$(stat -c %.9Y "$saved")
  else
    meta_epoch=$(sed -n 's/^METADATA epoch=\([0-9.]*\) .*/\1/p' "$log" | head -1)
  fi
  [ -n "$meta_epoch" ] && meta=$(since "$t0" "$meta_epoch")
  run_status "$rc" "$dest"
  status=$STATUS note=$NOTE
  if [ "$status" = TIMEOUT ]; then done_s=$RUN_TIMEOUT; fi
  if [ "$status" = ok ] && [ -z "$meta" ]; then
    status=FAILED note="no sign of the metadata (${saved:-no METADATA line})"
  fi
  if [ "$status" = ok ] && [ -n "$saved" ]; then
    local hash
    hash=$("$PY" "$HELPERS/torrent_tool.py" infohash "$saved" 2>&1) || true
    if [ "$hash" != "$INFOHASH" ]; then status=FAILED note="the saved $(basename "$saved") has info-hash $hash"; fi
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$client" "$run" "$status" "${meta:-0}" "$done_s" "$user" "$sys" \
    "$rss" "$note" >>"$RESULTS"
  if [ "$status" = ok ]; then
    awk -v c="$client" -v r="$run" -v n="$RUNS" -v m="$meta" -v d="$done_s" -v sy="$syncs" -v u="$user" -v s="$sys" \
      -v k="$rss" -v b="$PAYLOAD_BYTES" \
      'BEGIN { printf "  %-10s run %d/%d: metadata %6.3f s  complete %6.2f s (sync after exit %.2f s)  data %4.0f MB/s  CPU %.2f s  RSS %.0f MB\n",
        c, r, n, m, d, sy, b / (d - m > 0.001 ? d - m : 0.001) / 1e6, u + s, k / 1024 }'
  else
    echo "  $client run $run/$RUNS: $status ($note) after ${done_s}s; log: $BENCH_DIR/last-logs/$(basename "$log")"
    tail -5 "$log" | sed 's/^/      | /'
  fi
  rm -rf "$dest"
  sync
}

echo
echo "== magnet link, ${#SEED_ADDRS[@]} seeder(s) via opentracker ($RUNS runs each, one client at a time, timeout ${RUN_TIMEOUT}s) =="
for ((run = 1; run <= RUNS; run++)); do
  for client in "${CLIENTS[@]}"; do run_one "$client" "$run"; done
done

echo
echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HELPERS/magnet_report.py" "$RESULTS" "$PAYLOAD_BYTES"
echo
echo "metadata = from the client's start until the metadata is in; complete = from the start until the"
echo "client has exited with every piece verified, plus a sync; data MB/s = payload / (complete - metadata);"
echo "CPU = user+sys, medians; peak RSS: the largest over successful runs. MB = 10^6 bytes."
cp "$RESULTS" "$LOGS/results.tsv"
