#!/usr/bin/python3
"""The benchmark's libtorrent 2.0 leecher: downloads a torrent into --dir and exits 0 once every piece is
verified. libtorrent's default settings except what loopback needs (several connections per IP) and
no DHT/LSD/UPnP/NAT-PMP/uTP/PEX, so it only knows the peers the tracker gives it.

Run with /usr/bin/python3. Prints `DONE t=S` then `PEER IP:PORT blocks=N` per source; exit 2 on error.
"""
import argparse
import sys
import time

import libtorrent as lt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--max-secs", type=float, default=600)
    args = ap.parse_args()
    t0 = time.monotonic()
    ses = lt.session({
        "listen_interfaces": args.listen,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.block_progress_notification,
    })
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(args.torrent)
    atp.save_path = args.dir
    atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    atp.flags |= lt.torrent_flags.disable_pex
    h = ses.add_torrent(atp)
    blocks = {}
    while True:
        time.sleep(0.2)  # not wait_for_alert: it segfaults now and then in 2.0.8 (arvidn/libtorrent#5018)
        for a in ses.pop_alerts():
            if isinstance(a, lt.block_finished_alert):
                key = "%s:%d" % tuple(a.endpoint)
                blocks[key] = blocks.get(key, 0) + 1
            elif isinstance(a, (lt.file_error_alert, lt.torrent_error_alert, lt.listen_failed_alert)):
                print(f"ERROR {type(a).__name__}: {a.message()}", flush=True)
                return 2
            elif isinstance(a, lt.hash_failed_alert):
                print(f"HASHFAIL piece={a.piece_index}", flush=True)
        if h.status().is_seeding:
            break
        if time.monotonic() - t0 > args.max_secs:
            print("ERROR timeout", flush=True)
            return 2
    print(f"DONE t={time.monotonic() - t0:.2f}", flush=True)
    for a in ses.pop_alerts():
        if isinstance(a, lt.block_finished_alert):
            key = "%s:%d" % tuple(a.endpoint)
            blocks[key] = blocks.get(key, 0) + 1
    for key, n in sorted(blocks.items()):
        print(f"PEER {key} blocks={n}", flush=True)
    ses.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
