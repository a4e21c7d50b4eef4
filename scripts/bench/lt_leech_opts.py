#!/usr/bin/python3
"""lt_leech.py, the benchmark's libtorrent leecher, unchanged, with transport and encryption settings laid
over its session settings, and a report of how each peer was connected:

  lt_leech_opts.py [--tcp | --no-tcp] [--utp | --no-utp] [--encryption enabled|forced|disabled]
                   LT_LEECH_ARGS...

--no-tcp turns off TCP both ways, --utp turns on uTP both ways (lt_leech.py has it off), --encryption sets
MSE/PE both ways as tests/peers/lt_peer.py does (forced: RC4 only, plaintext refused). Every other
argument goes to lt_leech.py. After lt_leech.py's output it prints one line per peer seen connected
(polled every 0.5 s and once more when the download is done):
  CONN IP:PORT transport=tcp|utp encryption=rc4|plaintext|none
Run with /usr/bin/python3.
"""
import argparse
import os
import sys
import threading

import libtorrent

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lt_leech  # noqa: E402

UTP_SOCKET = 1 << 17  # peer_info::utp_socket in libtorrent 2.0 (not exported by the bindings)


def record(ses, seen):
    """Notes how each connected peer of the session is connected."""
    try:
        for h in ses.get_torrents():
            for p in h.get_peer_info():
                flags = p.flags
                if flags & (libtorrent.peer_info.connecting | libtorrent.peer_info.handshake):
                    continue  # not connected yet: nothing to tell
                ip, port = p.ip
                transport = "utp" if flags & UTP_SOCKET else "tcp"
                if flags & libtorrent.peer_info.rc4_encrypted:
                    enc = "rc4"
                elif flags & libtorrent.peer_info.plaintext_encrypted:
                    enc = "plaintext"
                else:
                    enc = "none"
                seen[f"{ip}:{port}"] = (transport, enc)
    except RuntimeError:  # the session is going away
        pass


class Session:
    """The real session, except that pause() (lt_leech's last call) first notes the peers once more."""

    def __init__(self, ses, seen):
        self._ses, self._seen = ses, seen

    def pause(self):
        record(self._ses, self._seen)
        return self._ses.pause()

    def __getattr__(self, name):
        return getattr(self._ses, name)


class Libtorrent:
    """Stands in for the libtorrent module inside lt_leech: the same, except session() adds settings."""

    def __init__(self, extra, sessions, seen):
        self._extra, self._sessions, self._seen = extra, sessions, seen

    def session(self, settings):
        ses = libtorrent.session({**settings, **self._extra})
        self._sessions.append(ses)
        return Session(ses, self._seen)

    def __getattr__(self, name):
        return getattr(libtorrent, name)


def watch(sessions, seen, stop):
    while not stop.wait(0.5):
        for ses in list(sessions):
            record(ses, seen)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tcp", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--utp", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--encryption", choices=["enabled", "forced", "disabled"])
    args, rest = ap.parse_known_args()
    extra = {}
    if args.tcp is not None:
        extra.update(enable_incoming_tcp=args.tcp, enable_outgoing_tcp=args.tcp)
    if args.utp is not None:
        extra.update(enable_incoming_utp=args.utp, enable_outgoing_utp=args.utp)
    if args.encryption:
        policy = {"forced": 0, "enabled": 1, "disabled": 2}[args.encryption]
        extra.update(in_enc_policy=policy, out_enc_policy=policy,
                     allowed_enc_level=2 if args.encryption == "forced" else 3)
    sessions, seen, stop = [], {}, threading.Event()
    lt_leech.lt = Libtorrent(extra, sessions, seen)
    sys.argv = [os.path.join(os.path.dirname(sys.argv[0]), "lt_leech.py"), *rest]
    t = threading.Thread(target=watch, args=(sessions, seen, stop), daemon=True)
    t.start()
    try:
        code = lt_leech.main()
    finally:
        stop.set()
        t.join(5)
    for key, (transport, enc) in sorted(seen.items()):
        print(f"CONN {key} transport={transport} encryption={enc}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
