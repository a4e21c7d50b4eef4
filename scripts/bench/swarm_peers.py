#!/usr/bin/python3
"""Many python3-libtorrent peers in one process, for scripts/bench-swarm.sh: one libtorrent session per
peer, each listening on (and dialing from) its own address, all seeding or all leeching one torrent.
Each session has tests/peers/lt_peer.py's settings (make_session: TCP only, no DHT/LSD/UPnP/NAT-PMP,
rate limits that apply to local peers too), two disk threads instead of ten, and a long alert queue.
One process instead of one per peer: 40 python processes are heavy on a 2-core machine.

  swarm_peers.py --seed|--leech --torrent FILE --dir DIR --peer NAME,IP:PORT,DOWN,UP [--peer ...]
DOWN and UP are rate limits in bytes/s (0: none). Seeders share DIR, the data (hash-checked before
READY); each leecher downloads into DIR/NAME. Run with /usr/bin/python3. Lines on stdout:
  READY NAME port=N        the session listens, its torrent is added (seeders: checked) and the
                           tracker answered
  ALLREADY t=S             every peer is READY
  START                    (leech) every torrent has been asked for at once (async_add_torrent);
                           t= below counts from here
  DONE NAME t=S            (leech) every piece of NAME downloaded and verified (its
                           torrent_finished_alert, read within 0.05 s)
  PEER NAME IP:PORT blocks=N  (leech, after DONE) 16 KiB blocks NAME received from that address
  ALLDONE t=S              (leech) every leecher is DONE
  STATS t=S done=K/N progress=P down=N up=N peers=N   sums (progress: the mean) every --stats-secs
  FINAL NAME progress=P down=N up=N                    per peer, on exit
  ERROR message            fatal; the exit status is 2
Stops on SIGTERM or SIGINT, when --parent-pid is gone, or after --max-secs.
"""

import argparse
import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "peers"))
import lt_peer  # noqa: E402

lt = lt_peer.lt
STOP = threading.Event()


SAY = threading.Lock()


def say(line):
    with SAY:
        print(line, flush=True)


class Peer:
    def __init__(self, spec, seed, args):
        try:
            name, addr, down, up = spec.split(",")
            ip, port = addr.rsplit(":", 1)
            self.down, self.up, port = int(down), int(up), int(port)
        except ValueError:
            sys.exit(f"bad --peer {spec!r}: want NAME,IP:PORT,DOWN,UP")
        self.name, self.seed = name, seed
        opts = argparse.Namespace(
            listen=f"{ip}:{port}", utp=False, tcp=True, encryption="enabled",
            upload_limit=self.up, download_limit=self.down, peer_log=False,
            unchoke_slots=None, unchoke_interval=None, announce_secs=None,
        )
        self.ses = lt_peer.make_session(opts)
        self.ses.apply_settings({"aio_threads": 2, "alert_queue_size": 100000, "stop_tracker_timeout": 1})
        self.dir = args.dir if seed else os.path.join(args.dir, name)
        self.torrent = args.torrent
        self.h = None
        self.tracker_ok = self.ready = self.done = False
        self.blocks = {}
        self.fatal = None

    def add(self):
        """Asks for the torrent to be added; the handle comes with add_torrent_alert."""
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(self.torrent)
        atp.save_path = self.dir
        atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        self.ses.async_add_torrent(atp)

    def drain(self, now, t0):
        """Handles the pending alerts; `now` is when they were fetched. A leecher is done at its
        torrent_finished_alert, which comes after the alerts of its last blocks."""
        for a in self.ses.pop_alerts():
            if isinstance(a, lt.block_finished_alert):
                self.blocks[a.endpoint] = self.blocks.get(a.endpoint, 0) + 1
            elif isinstance(a, lt.add_torrent_alert):
                if a.error.value():
                    self.fatal = f"{self.name} add_torrent_alert: {a.message()}"
                else:
                    self.h = a.handle
                    if self.seed:
                        self.h.force_recheck()
            elif isinstance(a, lt.torrent_finished_alert):
                if not self.seed and not self.done:
                    self.done = True
                    say(f"DONE {self.name} t={now - t0:.2f}")
                    for (ip, port), n in sorted(self.blocks.items()):
                        say(f"PEER {self.name} {ip}:{port} blocks={n}")
            elif isinstance(a, lt.tracker_reply_alert):
                self.tracker_ok = True
            elif isinstance(a, (lt.file_error_alert, lt.torrent_error_alert, lt.listen_failed_alert)):
                self.fatal = f"{self.name} {type(a).__name__}: {a.message()}"
            elif isinstance(a, lt.alerts_dropped_alert):
                say(f"ALERTS_DROPPED {self.name}")
            elif isinstance(a, lt.hash_failed_alert):
                say(f"HASHFAIL {self.name} piece={a.piece_index}")


def stats(peers, t0, every):
    """A STATS line every `every` seconds, from a thread of its own: torrent_handle.status() waits for
    the session's network thread, which may be busy for a while; the main loop only reads alerts."""
    while not STOP.wait(every):
        try:
            st = [p.h.status() for p in peers if p.h is not None]
        except RuntimeError:  # a session going away
            return
        if not st:
            continue
        say(f"STATS t={time.monotonic() - t0:.1f} done={sum(p.done for p in peers)}/{len(peers)} "
            f"progress={sum(s.progress for s in st) / len(st):.4f} "
            f"down={sum(s.total_payload_download for s in st)} up={sum(s.total_payload_upload for s in st)} "
            f"peers={sum(s.num_peers for s in st)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--seed", action="store_true")
    mode.add_argument("--leech", action="store_true")
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--peer", action="append", required=True, help="NAME,IP:PORT,DOWN,UP (bytes/s)")
    ap.add_argument("--stats-secs", type=float, default=5.0)
    ap.add_argument("--ready-timeout", type=float, default=300.0)
    ap.add_argument("--max-secs", type=float, default=3600.0, help="hard bound on the lifetime")
    ap.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone")
    args = ap.parse_args()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: STOP.set())
    t_boot = time.monotonic()
    # Every session first, then every torrent in one go (asynchronously): the leechers start together.
    peers = [Peer(spec, args.seed, args) for spec in args.peer]
    t0 = time.monotonic()
    for p in peers:
        p.add()
    if args.leech:
        say("START")
    threading.Thread(target=stats, args=(peers, t0, args.stats_secs), daemon=True).start()
    all_ready = all_done = False
    code = 0
    while not STOP.is_set():
        time.sleep(0.05)  # not wait_for_alert: see lt_peer.py
        for p in peers:
            p.drain(time.monotonic(), t0)
            if p.fatal:
                say(f"ERROR {p.fatal}")
                code = 2
                break
            if p.ready or p.h is None or not p.tracker_ok:
                continue
            if p.seed:
                # Seeders only: status() may wait, and their readiness is not timed.
                s = p.h.status()
                checking = s.state in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
                if not s.is_seeding or checking:
                    continue
            p.ready = True
            say(f"READY {p.name} port={p.ses.listen_port()}")
        if code:
            break
        now = time.monotonic()
        if not all_ready and all(p.ready for p in peers):
            all_ready = True
            say(f"ALLREADY t={now - t_boot:.2f}")
        if args.leech and not all_done and all(p.done for p in peers):
            all_done = True
            say(f"ALLDONE t={max(float(0), now - t0):.2f}")
        if not all_ready and now - t_boot > args.ready_timeout:
            late = " ".join(p.name for p in peers if not p.ready)
            say(f"ERROR not ready after {args.ready_timeout}s: {late}")
            code = 2
            break
        if args.parent_pid and os.getppid() != args.parent_pid:
            say("ERROR parent process is gone")
            code = 2
            break
        if now - t_boot > args.max_secs:
            say(f"ERROR still running after --max-secs {args.max_secs}")
            code = 2
            break
    STOP.set()
    for p in peers:
        if p.h is not None:
            s = p.h.status()
            say(f"FINAL {p.name} progress={s.progress:.4f} down={s.total_payload_download} up={s.total_payload_upload}")
    sys.stdout.flush()
    # Not the sessions' destructors: each would wait for its tracker's `stopped` answer, one after the
    # other. Seeders only read; a leecher's partial data is thrown away.
    os._exit(code)


if __name__ == "__main__":
    main()
