#!/usr/bin/env bash
# Local download demo, no internet needed: makes a 64 MB multi-file payload and a torrent for it, runs
# Debian's opentracker and a python3-libtorrent seeder on 127.0.0.1, downloads with pixtorrent, and
# compares the files. Everything it starts is stopped on exit.
#   ./scripts/demo-download.sh [WORKDIR]
set -euo pipefail
# The DHT stays off: a demo or benchmark never reaches the public DHT routers.
export PIXTORRENT_NO_DHT=1 PIXTORRENT_FORBID_PUBLIC_DHT=1
cd "$(dirname "$0")/.."
work="${1:-$(mktemp -d /tmp/pixtorrent-demo.XXXXXX)}"
mkdir -p "$work"
need=()
command -v opentracker >/dev/null || need+=(opentracker)
command -v mktorrent >/dev/null || need+=(mktorrent)
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || need+=(python3-libtorrent)
if ((${#need[@]})); then
    sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "${need[@]}"
fi
cargo build --release --quiet

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# An Internet-Archive-shaped item: one big file, small odd-sized ones, an empty one.
src="$work/seed/DemoItem"
if [[ ! -f "$src/Content/demo.mp4" ]]; then
    mkdir -p "$src/Content"
    head -c 62000000 /dev/urandom >"$src/Content/demo.mp4"
    head -c 1431 /dev/urandom >"$src/DemoItem_meta.xml"
    head -c 777777 /dev/urandom >"$src/__ia_thumb.jpg"
    : >"$src/DemoItem_empty.txt"
fi
port=$((20000 + RANDOM % 20000))
rm -f "$work/demo.torrent"
mktorrent -l 19 -a "http://127.0.0.1:$port/announce" -o "$work/demo.torrent" "$src" >/dev/null
hash=$(target/release/pixtorrent --info --json "$work/demo.torrent" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["info_hash"])')
mkdir -p "$work/tracker" && echo "$hash" >"$work/tracker/whitelist"
opentracker -i 127.0.0.1 -p "$port" -P "$port" -d "$work/tracker" -w /whitelist >/dev/null 2>&1 &
pids+=($!)
/usr/bin/python3 tests/peers/lt_peer.py --torrent "$work/demo.torrent" --dir "$work/seed" --seed \
    --listen 127.0.0.1:0 --max-secs 600 >"$work/seeder.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q READY "$work/seeder.log" && break; sleep 0.2; done
echo "seeder ready; downloading with pixtorrent into $work/out"
rm -rf "$work/out"
target/release/pixtorrent -t "$work/demo.torrent" -o "$work/out" --port 0 --bind 127.0.0.1
diff -r "$src" "$work/out/DemoItem" && echo "demo: files identical"
