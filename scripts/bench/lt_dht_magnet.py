#!/usr/bin/python3
"""The DHT benchmark's libtorrent 2.0 leecher: given only a magnet link with no tracker and one DHT
node to bootstrap from (--bootstrap HOST:PORT, with the public routers off), finds peers through the
DHT, fetches the metadata and downloads into --dir. DHT on with IP restrictions off (a local DHT on
127.0.0.1); LSD/UPnP/NAT-PMP/uTP off.

Run with /usr/bin/python3. Prints (t: seconds since the session was created, polled every 10 ms):
  PEER t=S       the first peer connected
  METADATA t=S   torrent_status.has_metadata became true
  DONE t=S       torrent_status.is_seeding became true
  ERROR message  gave up (exit status 2)
"""
import argparse
import sys
import time

import libtorrent as lt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--magnet", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--max-secs", type=float, default=300)
    args = ap.parse_args()
    t0 = time.monotonic()
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": True,
        "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_block_ratelimit": 100000,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification,
    })
    host, port = args.bootstrap.rsplit(":", 1)
    ses.add_dht_node((host, int(port)))
    atp = lt.parse_magnet_uri(args.magnet)
    atp.save_path = args.dir
    atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    h = ses.add_torrent(atp)
    peer = metadata = False
    while time.monotonic() - t0 < args.max_secs:
        time.sleep(0.01)
        ses.pop_alerts()
        s = h.status()
        t = time.monotonic() - t0
        if not peer and s.num_peers > 0:
            peer = True
            print(f"PEER t={t:.3f}", flush=True)
        if not metadata and s.has_metadata:
            metadata = True
            print(f"METADATA t={t:.3f}", flush=True)
        if s.is_seeding:
            print(f"DONE t={t:.3f}", flush=True)
            return 0
    print("ERROR timed out", flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
