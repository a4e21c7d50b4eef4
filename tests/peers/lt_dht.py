#!/usr/bin/python3
"""A local mainline DHT of python3-libtorrent sessions on 127.0.0.1 for pixtorrent's DHT tests, with
no tracker and no public router anywhere (dht_bootstrap_nodes is empty; LSD, UPnP, NAT-PMP, uTP off).

Sessions start ~50 ms apart, each given three earlier ones with add_dht_node (nodes named in
dht_bootstrap_nodes count as routers and never enter routing tables), with libtorrent's DHT rate
limits raised and its IP restrictions off so that many nodes on one IP work.
  --seed-torrent T --seed-dir D   the last session seeds T from D (announced to the DHT)
  --leech-magnet M --leech-dir D  one more session leeches M with the DHT as its only source
  --add-node HOST:PORT            every session also learns this node (pixtorrent's)
Lines on stdout: `READY node0=127.0.0.1:P nodes=N seeder=127.0.0.1:P`, `LEECH_PEER IP:PORT` for each
peer the leecher is seen connected to (polled), `DONE t=S` when the leecher completes, `EXIT`. Stops at the end of
stdin, when --parent-pid is gone, or after --max-secs.
"""

import argparse
import os
import threading
import time

import libtorrent as lt

from btlib import STOP, say, watch_stdin


def session():
    s = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "outgoing_interfaces": "127.0.0.1",
            "enable_dht": True,
            "dht_bootstrap_nodes": "",
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_block_ratelimit": 100000,
            "dht_upload_rate_limit": 1000000,
            "dht_announce_interval": 30,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_incoming_utp": False,
            "enable_outgoing_utp": False,
            "allow_multiple_connections_per_ip": True,
            "alert_mask": lt.alert.category_t.error_notification
            | lt.alert.category_t.status_notification
            | lt.alert.category_t.dht_notification,
        }
    )
    return s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=16)
    p.add_argument("--seed-torrent")
    p.add_argument("--seed-dir")
    p.add_argument("--leech-magnet")
    p.add_argument("--leech-dir")
    p.add_argument("--add-node", action="append", default=[])
    p.add_argument("--settle-secs", type=float, default=6.0)
    p.add_argument("--max-secs", type=float, default=300.0)
    p.add_argument("--parent-pid", type=int, default=0)
    args = p.parse_args()
    threading.Thread(target=watch_stdin, daemon=True).start()
    t0 = time.monotonic()
    sessions = []
    for i in range(args.nodes):
        s = session()
        for j in range(max(0, i - 3), i):
            s.add_dht_node(("127.0.0.1", sessions[j].listen_port()))
        for extra in args.add_node:
            host, port = extra.rsplit(":", 1)
            s.add_dht_node((host, int(port)))
        sessions.append(s)
        time.sleep(0.05)
    seeder = None
    if args.seed_torrent:
        ti = lt.torrent_info(args.seed_torrent)
        params = lt.add_torrent_params()
        params.ti = ti
        params.save_path = args.seed_dir
        params.flags |= lt.torrent_flags.seed_mode
        seeder = sessions[-1].add_torrent(params)
    # Let the routing tables fill, then make the seeder announce now.
    deadline = time.monotonic() + args.settle_secs
    while time.monotonic() < deadline and not STOP.is_set():
        time.sleep(0.2)
    if seeder is not None:
        seeder.force_dht_announce()
        time.sleep(2.0)
    nodes = [s.status().dht_nodes for s in sessions]  # noqa: deprecated in 2.0, still exact
    seeder_at = f" seeder=127.0.0.1:{sessions[-1].listen_port()}" if seeder is not None else ""
    say(f"READY node0=127.0.0.1:{sessions[0].listen_port()} nodes={min(nodes)}-{max(nodes)}{seeder_at}")
    leech = None
    if args.leech_magnet:
        ls = session()
        ls.add_dht_node(("127.0.0.1", sessions[0].listen_port()))
        for extra in args.add_node:
            host, port = extra.rsplit(":", 1)
            ls.add_dht_node((host, int(port)))
        params = lt.parse_magnet_uri(args.leech_magnet)
        params.save_path = args.leech_dir
        leech = ls.add_torrent(params)
        sessions.append(ls)
    seen = set()
    done = False
    while not STOP.is_set() and time.monotonic() - t0 < args.max_secs:
        if args.parent_pid and not os.path.exists(f"/proc/{args.parent_pid}"):
            break
        if leech is not None:
            for peer in leech.get_peer_info():
                addr = f"{peer.ip[0]}:{peer.ip[1]}"
                if addr not in seen:
                    seen.add(addr)
                    say(f"LEECH_PEER {addr}")
            st = leech.status()
            if not done and st.is_seeding:
                done = True
                say(f"DONE t={time.monotonic() - t0:.1f}")
            if not done and int(time.monotonic() - t0) % 10 == 0:
                leech.force_dht_announce()
        for s in sessions:
            s.pop_alerts()
        time.sleep(0.2)
    say("EXIT")


if __name__ == "__main__":
    main()
