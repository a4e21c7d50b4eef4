#!/usr/bin/env bash
# The 3-node demo, no internet needed: a tracker, one pixtorrent seeder and two pixtorrent leechers on
# 127.0.0.1, sharing example-torrents/pixtorrent-demo.torrent (40 MiB, 6 files). The leechers fetch from
# the seeder and from each other, seed for a few seconds once complete, and exit; then the seeder is
# stopped with Ctrl-C (SIGINT) and every copy is compared with the original.
#   ./scripts/demo-swarm.sh [WORKDIR]
# The tracker is pixtorrent-tracker (in memory) on 127.0.0.1:16969, the address inside the torrent.
# Environment: PIXTORRENT_BIN uses that binary (and pixtorrent-tracker beside it) instead of
# `cargo build --release`.
set -euo pipefail
# The DHT stays off: a demo or benchmark never reaches the public DHT routers.
export PIXTORRENT_NO_DHT=1 PIXTORRENT_FORBID_PUBLIC_DHT=1
cd "$(dirname "$0")/.."
work="${1:-$(mktemp -d /tmp/pixtorrent-swarm.XXXXXX)}"
mkdir -p "$work"
torrent=example-torrents/pixtorrent-demo.torrent
hash=5a8dc0daf047d3d72b3e25a9464126eeabbb3461
port=16969

if ! command -v python3 >/dev/null; then
    sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3 >/dev/null
fi
if [[ -n "${PIXTORRENT_BIN:-}" ]]; then
    pix=$(realpath "$PIXTORRENT_BIN")
else
    cargo build --release --quiet
    pix=$(realpath target/release/pixtorrent)
fi
tracker_bin=$(dirname "$pix")/pixtorrent-tracker
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "error: 127.0.0.1:$port is taken (the demo torrent's tracker address); stop what listens there" >&2
    exit 1
fi

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== payload: example-torrents/make-demo-payload.py (the same bytes on every machine)"
python3 example-torrents/make-demo-payload.py "$work/seed"
rm -rf "$work/leecher1" "$work/leecher2"

echo "== tracker: pixtorrent-tracker on 127.0.0.1:$port, whitelisting $hash"
echo "$hash" >"$work/whitelist"
"$tracker_bin" --listen "127.0.0.1:$port" --whitelist "$work/whitelist" > >(sed -u 's/^/[tracker]  /') 2>&1 &
pids+=($!)
export PIXTORRENT_PROGRESS_SECS=1
common=(-t "$torrent" --bind 127.0.0.1 --port 0)

echo "== seeder: checks the payload against the torrent and seeds it"
"$pix" "${common[@]}" -o "$work/seed" --seed > >(sed -u 's/^/[seeder]   /') 2>&1 &
seeder=$!
pids+=("$seeder")
# Until the tracker lists one seeder (bounded: 15 s).
scrape="import sys, urllib.request
d = urllib.request.urlopen('http://127.0.0.1:$port/scrape?info_hash=' + ''.join('%' + sys.argv[1][i:i + 2] for i in range(0, 40, 2)), timeout=2).read()
sys.exit(0 if b'8:completei1e' in d else 1)"
for i in $(seq 75); do
    python3 -c "$scrape" "$hash" 2>/dev/null && break
    ((i < 75)) || { echo "error: the seeder never registered with the tracker" >&2; exit 1; }
    sleep 0.2
done

echo "== two leechers: download from the seeder and from each other, seed 5 s, exit"
timeout 300 "$pix" "${common[@]}" -o "$work/leecher1" --seed --seed-time 5s > >(sed -u 's/^/[leecher1] /') 2>&1 &
l1=$!
pids+=("$l1")
timeout 300 "$pix" "${common[@]}" -o "$work/leecher2" --seed --seed-time 5s > >(sed -u 's/^/[leecher2] /') 2>&1 &
l2=$!
pids+=("$l2")
rc=0
wait "$l1" || rc=$?
wait "$l2" || rc=$?
((rc == 0)) || { echo "error: a leecher failed (exit $rc)" >&2; exit 1; }

python3 -c "import urllib.request; print('[tracker]  /stats:', urllib.request.urlopen('http://127.0.0.1:$port/stats', timeout=2).read().decode().strip())"
echo "== stopping the seeder (Ctrl-C)"
kill -INT "$seeder"
wait "$seeder" || true
sleep 0.2
for l in leecher1 leecher2; do
    diff -r "$work/seed/pixtorrent-demo" "$work/$l/pixtorrent-demo"
done
echo "demo: both leechers hold files identical to the seeder's ($work)"
