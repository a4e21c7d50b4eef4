# shellcheck shell=bash disable=SC2034 # sets variables for the script that sources it
# Leechers other than libtorrent for scripts/bench-upload.sh (sourced, not run, after common.sh):
# transmission-daemon 3.00 inside a network namespace of the script's own (it ignores peers on
# 127.0.0.0/8) and rtorrent 0.9.8 as a daemon on 127.0.0.1. Each is started in the background, its
# pid in LEECH_PID, and signals completion by a marker file its done hook creates (LEECH_DONE).

# --- the network namespace -------------------------------------------------------------------------
NS="" NS_HOST_IF="" NS_HOST_IP="" NS_IP=""

# netns_up: a namespace joined to the host by a veth pair with a /30 of its own from 10.210.0.0/16
# (the tests use 10.200.0.0/13): NS_HOST_IP on the host side, NS_IP inside. Root needed.
netns_up() {
  local i x
  for i in $(seq 0 15); do
    x=$((($$ + i * 7) % 16384))
    NS_HOST_IP=10.210.$((x / 64)).$((x % 64 * 4 + 1))
    NS_IP=10.210.$((x / 64)).$((x % 64 * 4 + 2))
    if ip -o -4 addr show | grep -qE " ($NS_HOST_IP|$NS_IP)/"; then continue; fi
    NS=pxb$$_$i
    NS_HOST_IF=pxbh$$_$i
    ip netns add "$NS" 2>/dev/null || { NS=""; continue; }
    if ip -n "$NS" link set lo up &&
      ip link add "$NS_HOST_IF" type veth peer name pxbn netns "$NS" &&
      ip addr add "$NS_HOST_IP/30" dev "$NS_HOST_IF" && ip link set "$NS_HOST_IF" up &&
      ip -n "$NS" addr add "$NS_IP/30" dev pxbn && ip -n "$NS" link set pxbn up; then
      return 0
    fi
    netns_down
  done
  echo "cannot create a network namespace (root needed for the Transmission leecher)" >&2
  return 1
}

# netns_down: deletes the veth pair and the namespace, if made.
netns_down() {
  if [ -n "$NS_HOST_IF" ]; then ip link del "$NS_HOST_IF" 2>/dev/null || true; fi
  if [ -n "$NS" ]; then ip netns del "$NS" 2>/dev/null || true; fi
  NS="" NS_HOST_IF=""
}

# port_open_on IP PORT: whether something accepts connections at IP:PORT.
port_open_on() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# --- Transmission ----------------------------------------------------------------------------------
TR_RPC_PORT=9091
TR_PEER_PORT=51413

# start_transmission NAME TORRENT DEST: transmission-daemon in $NS downloading TORRENT (whose tracker
# and seeder must be reachable from the namespace) into DEST. Sets LEECH_PID and LEECH_DONE. Returns
# 1 if its RPC does not come up or the torrent is not accepted.
start_transmission() {
  local name=$1 torrent=$2 dest=$3 conf=$RUN_DIR/$1-conf i
  rm -rf "$conf"
  mkdir -p "$conf" "$dest"
  LEECH_DONE=$conf/done
  printf '#!/bin/sh\ntouch %s\n' "$LEECH_DONE" >"$conf/done.sh"
  chmod +x "$conf/done.sh"
  cat >"$conf/settings.json" <<EOF
{
  "bind-address-ipv4": "$NS_IP",
  "dht-enabled": false,
  "download-dir": "$dest",
  "download-queue-enabled": false,
  "encryption": 0,
  "idle-seeding-limit-enabled": false,
  "incomplete-dir-enabled": false,
  "lpd-enabled": false,
  "message-level": 2,
  "peer-limit-global": 200,
  "peer-limit-per-torrent": 50,
  "peer-port": $TR_PEER_PORT,
  "peer-port-random-on-start": false,
  "pex-enabled": false,
  "port-forwarding-enabled": false,
  "queue-stalled-enabled": false,
  "ratio-limit-enabled": false,
  "rename-partial-files": false,
  "rpc-authentication-required": false,
  "rpc-bind-address": "$NS_IP",
  "rpc-enabled": true,
  "rpc-host-whitelist-enabled": false,
  "rpc-port": $TR_RPC_PORT,
  "rpc-whitelist-enabled": false,
  "script-torrent-done-enabled": true,
  "script-torrent-done-filename": "$conf/done.sh",
  "seed-queue-enabled": false,
  "speed-limit-down-enabled": false,
  "speed-limit-up-enabled": false,
  "start-added-torrents": true,
  "utp-enabled": false,
  "watch-dir-enabled": false
}
EOF
  # `ip netns exec` execs the daemon: the pid is the daemon's.
  start "$name" ip netns exec "$NS" transmission-daemon --foreground --config-dir "$conf" --log-info
  LEECH_PID=$LAST_PID
  for ((i = 0; i < 200; i++)); do
    port_open_on "$NS_IP" "$TR_RPC_PORT" && break
    kill -0 "$LEECH_PID" 2>/dev/null || break
    sleep 0.05
  done
  transmission-remote "$NS_IP:$TR_RPC_PORT" --add "$torrent" >>"$LOGS/$name.log" 2>&1
}

# stop_transmission: stops the torrent (its files are flushed and closed), then the daemon.
stop_transmission() {
  transmission-remote "$NS_IP:$TR_RPC_PORT" -t all --stop >/dev/null 2>&1 || true
  sleep 0.5
  stop "$LEECH_PID"
}

# --- rtorrent --------------------------------------------------------------------------------------
# start_rtorrent NAME TORRENT DEST: rtorrent as a daemon (no terminal) on 127.0.0.1 downloading TORRENT
# into DEST, DHT/PEX/UDP trackers/encryption off. Sets LEECH_PID and LEECH_DONE.
start_rtorrent() {
  local name=$1 torrent=$2 dest=$3 conf=$RUN_DIR/$1-conf port
  rm -rf "$conf"
  mkdir -p "$conf/session" "$dest"
  LEECH_DONE=$conf/done
  port=$(free_port)
  cat >"$conf/rtorrent.rc" <<EOF
system.daemon.set = true
session.path.set = $conf/session
directory.default.set = $dest
network.port_range.set = $port-$port
network.port_random.set = no
network.bind_address.set = 127.0.0.1
network.local_address.set = 127.0.0.1
dht.mode.set = disable
protocol.pex.set = no
trackers.use_udp.set = no
protocol.encryption.set = none
log.open_file = main, $LOGS/$name.rtorrent.log
log.add_output = info, main
method.set_key = event.download.finished, bench_done, "execute.nothrow = touch, $LEECH_DONE"
load.start = $torrent
EOF
  start "$name" rtorrent -n -o "import=$conf/rtorrent.rc"
  LEECH_PID=$LAST_PID
}
