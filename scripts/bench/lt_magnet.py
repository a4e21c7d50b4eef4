#!/usr/bin/python3
"""The magnet benchmark's libtorrent 2.0 leecher: given only a magnet link, fetches the metadata from
peers (BEP 9), downloads into --dir and exits 0 once every piece is verified. Settings as in
lt_leech.py: libtorrent's defaults except what loopback needs (several connections per IP) and no
DHT/LSD/UPnP/NAT-PMP/uTP/PEX, so it only knows the peers the link's tracker gives it.

Run with /usr/bin/python3. Prints, one fact a line (epoch: wall clock, time.time(); t: seconds since
the session was created):
  METADATA epoch=E t=S   torrent_status.has_metadata became true (checked every 10 ms)
  DONE epoch=E t=S       torrent_status.is_seeding became true (checked every 50 ms after the metadata)
  METADATA_FAILED msg    metadata that did not match the info-hash (libtorrent asks others)
  HASHFAIL piece=N       a piece that failed its hash check
  ERROR message          fatal; the exit status is 2
"""
import argparse
import sys
import time

import libtorrent as lt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--magnet", required=True)
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
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
    })
    atp = lt.parse_magnet_uri(args.magnet)
    atp.save_path = args.dir
    atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    atp.flags |= lt.torrent_flags.disable_pex
    h = ses.add_torrent(atp)
    metadata = False
    while True:
        # Polled, not wait_for_alert: that segfaults now and then in 2.0.8 (arvidn/libtorrent#5018).
        time.sleep(0.05 if metadata else 0.01)
        for a in ses.pop_alerts():
            if isinstance(a, (lt.file_error_alert, lt.torrent_error_alert, lt.listen_failed_alert)):
                print(f"ERROR {type(a).__name__}: {a.message()}", flush=True)
                return 2
            if isinstance(a, lt.hash_failed_alert):
                print(f"HASHFAIL piece={a.piece_index}", flush=True)
            elif isinstance(a, lt.metadata_failed_alert):  # a peer's metadata did not match; goes on
                print(f"METADATA_FAILED {a.message()}", flush=True)
        s = h.status()
        if not metadata and s.has_metadata:
            metadata = True
            print(f"METADATA epoch={time.time():.6f} t={time.monotonic() - t0:.3f}", flush=True)
        if metadata and s.is_seeding:
            break
        if time.monotonic() - t0 > args.max_secs:
            print("ERROR timeout", flush=True)
            return 2
    print(f"DONE epoch={time.time():.6f} t={time.monotonic() - t0:.3f}", flush=True)
    ses.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
