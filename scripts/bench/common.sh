# shellcheck shell=bash disable=SC2034 # sets variables for the script that sources it
# Shared by the bench-*.sh scripts that source it (sourced, not run): the pixtorrent binary,
# background processes, their cleanup and stop_procs, per-process CPU, and the cached payload with its
# torrent. Expects PY, HELPERS, BENCH_DIR and SIZE_MB to be set, and scripts/lib.sh sourced.

if [ -n "${PIXTORRENT_BIN:-}" ]; then
  PIX=$PIXTORRENT_BIN
else
  cargo build --release --quiet
  PIX=${CARGO_TARGET_DIR:-target}/release/pixtorrent
fi
PIX=$(realpath "$PIX")

# --- processes and cleanup -------------------------------------------------------------------------
mkdir -p "$BENCH_DIR"
RUN_DIR=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
PIDS=()    # background processes still running, killed by pid on exit
CUR_PID="" # the `timeout` around the download being timed (it signals its whole process group)
cleanup() {
  local pid
  trap - EXIT INT TERM
  [ -n "$CUR_PID" ] && kill -TERM "$CUR_PID" 2>/dev/null
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    local alive=0
    for pid in "${PIDS[@]}" $CUR_PID; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.3
  done
  for pid in "${PIDS[@]}" $CUR_PID; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -d "$RUN_DIR/logs" ]; then
    rm -rf "$BENCH_DIR/last-logs"
    mv "$RUN_DIR/logs" "$BENCH_DIR/last-logs"
  fi
  rm -rf "$RUN_DIR"
}

# stop_procs PID...: stops those background processes (TERM, then KILL after 5 s) and forgets them.
stop_procs() {
  local pid alive keep=()
  (($#)) || return 0
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "$@"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do [[ " $* " == *" $pid "* ]] || keep+=("$pid"); done
  PIDS=("${keep[@]}")
}

trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$RUN_DIR/logs"
LOGS=$RUN_DIR/logs

# start NAME CMD...: runs CMD in the background, output in $LOGS/NAME.log; its pid lands in $LAST_PID.
start() {
  local name=$1
  shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# wait_ready NAME SECS: waits for `READY port=N` in NAME's log and prints N.
wait_ready() {
  local name=$1 secs=$2 i line
  for ((i = 0; i < secs * 10; i++)); do
    line=$(grep -m1 '^READY port=' "$LOGS/$name.log" || true)
    if [ -n "$line" ]; then
      echo "${line#READY port=}"
      return 0
    fi
    if grep -q '^ERROR' "$LOGS/$name.log"; then break; fi
    sleep 0.1
  done
  echo "$name did not get ready; its log:" >&2
  tail -20 "$LOGS/$name.log" >&2
  return 1
}

# cpu_of PID...: user+sys seconds the processes have used so far.
cpu_of() {
  local pid ticks=0 f
  for pid in "$@"; do
    # Fields after the command name: utime and stime are the 12th and 13th.
    f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
    read -r -a st <<<"$f"
    ticks=$((ticks + st[11] + st[12]))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

# --- payload and torrent (cached) ------------------------------------------------------------------
NAME=ia_bench_item_${SIZE_MB}m
PAYLOAD=$BENCH_DIR/payload-${SIZE_MB}m
if [ ! -f "$PAYLOAD/.complete" ]; then
  echo "generating a ${SIZE_MB} MiB payload in $PAYLOAD ..."
  rm -rf "$PAYLOAD"
  mkdir -p "$PAYLOAD/data"
  "$PY" "$HELPERS/make_payload.py" "$PAYLOAD/data" "$NAME" "$SIZE_MB" >/dev/null
  # 1 MiB pieces; the announce URL is replaced per run (the info dict, so the info-hash, stays).
  mktorrent -l 20 -a http://127.0.0.1:1/announce -n "$NAME" -o "$PAYLOAD/base.torrent" "$PAYLOAD/data/$NAME" >/dev/null
  touch "$PAYLOAD/.complete"
fi
SRC=$PAYLOAD/data/$NAME
PAYLOAD_BYTES=$(find "$SRC" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')
NFILES=$(find "$SRC" -type f | wc -l)
# BENCH_FORMAT v2 or hybrid (default v1): the torrent used is made by `pixtorrent create --v2` or
# `--hybrid` from the same files with the same 1 MiB pieces, cached beside base.torrent.
BASE_TORRENT=$PAYLOAD/base.torrent
case ${BENCH_FORMAT:-v1} in
  v1) ;;
  v2 | hybrid)
    BASE_TORRENT=$PAYLOAD/base-$BENCH_FORMAT.torrent
    if [ ! -f "$BASE_TORRENT" ]; then
      "$PIX" create "$SRC" "--$BENCH_FORMAT" --piece-size 1048576 --tracker http://127.0.0.1:1/announce \
        -o "$BASE_TORRENT.tmp" >/dev/null
      mv "$BASE_TORRENT.tmp" "$BASE_TORRENT"
    fi ;;
  *) echo "unknown format: $BENCH_FORMAT" >&2; exit 2 ;;
esac
# The hash(es) trackers see, one per line (a hybrid is announced under both).
INFOHASH=$("$PY" "$HELPERS/torrent_tool.py" infohash "$BASE_TORRENT")

# verify DEST: compares every source file with its copy; prints what is wrong, nothing if all match.
verify() {
  local dest=$1 rel
  while IFS= read -r -d '' rel; do
    rel=${rel#"$SRC"/}
    if [ ! -f "$dest/$NAME/$rel" ]; then
      echo "missing $rel"
    elif ! cmp -s "$SRC/$rel" "$dest/$NAME/$rel"; then
      echo "differs: $rel"
    fi
  done < <(find "$SRC" -type f -print0)
}

# run_status RC DEST: the outcome of one timed download from its exit status (timeout's 124, or 137
# when it had to kill) and a byte-for-byte check of DEST: sets STATUS (ok, TIMEOUT, FAILED) and NOTE.
run_status() {
  local rc=$1 dest=$2 bad
  STATUS=ok NOTE=""
  if ((rc == 124 || rc == 137)); then
    STATUS=TIMEOUT NOTE="no exit within ${RUN_TIMEOUT}s"
  elif ((rc != 0)); then
    STATUS=FAILED NOTE="exit status $rc"
  else
    bad=$(verify "$dest" | head -3 | paste -sd ';' -)
    if [ -n "$bad" ]; then STATUS=FAILED NOTE="verify: $bad"; fi
  fi
}
