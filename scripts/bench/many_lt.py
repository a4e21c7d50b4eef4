#!/usr/bin/python3
"""The libtorrent side of the many-torrents benchmark (scripts/bench-many.sh): one libtorrent 2.0 session
seeding every torrent given, from the data already in --dir, until SIGTERM, --max-secs or --parent-pid
is gone.

Every torrent is added neither auto-managed nor paused, so all of them seed and announce at once, as in
pixtorrent (auto-managed, libtorrent would keep only `active_seeds`, 5 by default, running). With no
resume data libtorrent hash-checks the files it finds, as pixtorrent does on its first run; --seed-mode
skips that (libtorrent trusts the data and checks each piece when it is first requested).
DHT, LSD, UPnP and NAT-PMP are off; it listens and connects on the address of --listen only.
Otherwise libtorrent's default settings (uTP on, file_pool_size, disk threads).

Run with /usr/bin/python3. Lines on stdout:
  LISTEN port=N                 listening
  ADDED n=N t=S                 every torrent added (S: seconds since the session was made)
  SEEDING n=N t=S checked=C     every torrent seeding; C torrents went through checking_files
  ANNOUNCES t=S replies=N errors=N   tracker replies and errors so far, every --report-secs and at exit
  ERROR message                 fatal (a torrent or file error, the listen socket); exit status 2
  EXIT                          last line on a clean exit
"""
import argparse
import os
import signal
import sys
import time

import libtorrent as lt

STOP = False


def say(line):
    print(line, flush=True)


def main():
    global STOP
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("torrents", nargs="+")
    ap.add_argument("--dir", required=True, help="save path: holds every torrent's files")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--seed-mode", action="store_true", help="no check: trust the data (seed_mode)")
    ap.add_argument("--report-secs", type=float, default=10.0)
    ap.add_argument("--max-secs", type=float, default=3600.0)
    ap.add_argument("--parent-pid", type=int, default=0)
    args = ap.parse_args()

    def on_signal(*_):
        global STOP
        STOP = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    ip = args.listen.rsplit(":", 1)[0].strip("[]")
    t0 = time.monotonic()
    ses = lt.session({
        "listen_interfaces": args.listen,
        "outgoing_interfaces": ip,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification,
        # Room for one status and one tracker alert per torrent between two drains.
        "alert_queue_size": 100_000,
    })
    handles = []
    for path in args.torrents:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(path)
        atp.save_path = args.dir
        atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        if args.seed_mode:
            atp.flags |= lt.torrent_flags.seed_mode
        handles.append(ses.add_torrent(atp))
    say(f"ADDED n={len(handles)} t={time.monotonic() - t0:.2f}")

    checking = set()
    replies = errors = 0
    listening = False
    seeding_done = False
    pending = {str(h.info_hashes().v1): h for h in handles}
    next_poll = 0.0
    next_report = time.monotonic() + args.report_secs
    while not STOP:
        # Not wait_for_alert: it segfaults now and then in 2.0.8 (arvidn/libtorrent#5018).
        time.sleep(0.1 if not seeding_done else 1.0)
        for a in ses.pop_alerts():
            if isinstance(a, lt.listen_succeeded_alert) and not listening:
                listening = True
                say(f"LISTEN port={a.port}")
            elif isinstance(a, lt.state_changed_alert):
                key = str(a.handle.info_hashes().v1)
                if a.state == lt.torrent_status.states.checking_files:
                    checking.add(key)
                elif a.state == lt.torrent_status.states.seeding:
                    pending.pop(key, None)
            elif isinstance(a, lt.tracker_reply_alert):
                replies += 1
            elif isinstance(a, lt.tracker_error_alert):
                errors += 1
            elif isinstance(a, (lt.file_error_alert, lt.torrent_error_alert, lt.listen_failed_alert)):
                say(f"ERROR {type(a).__name__}: {a.message()}")
                return 2
        now = time.monotonic()
        if not seeding_done:
            # The alerts say when a torrent starts seeding; once a second the torrents not seeding yet
            # are also asked (none once all are), in case a state change came before its alert could.
            if now >= next_poll:
                pending = {k: h for k, h in pending.items() if not h.status().is_seeding}
                next_poll = now + 1.0
            if not pending:
                seeding_done = True
                say(f"SEEDING n={len(handles)} t={now - t0:.2f} checked={len(checking)}")
        if now >= next_report:
            say(f"ANNOUNCES t={now - t0:.1f} replies={replies} errors={errors}")
            next_report = now + args.report_secs
        if now - t0 > args.max_secs:
            say("ERROR max-secs reached")
            return 2
        if args.parent_pid and not os.path.exists(f"/proc/{args.parent_pid}"):
            break
    say(f"ANNOUNCES t={time.monotonic() - t0:.1f} replies={replies} errors={errors}")
    # As pixtorrent does on SIGTERM: `stopped` announces (libtorrent waits stop_tracker_timeout for them).
    del handles, pending
    del ses
    say("EXIT")
    return 0


if __name__ == "__main__":
    sys.exit(main())
