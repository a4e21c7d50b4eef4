#!/usr/bin/python3
"""A hostile DHT node for pixtorrent's DHT tests (stdlib only), on 127.0.0.1 UDP. It answers `ping`
correctly (so it enters routing tables), and every other query with, in turn: bencoded garbage, a
64 KiB reply, a reply with the wrong transaction id, and nothing. With --flood HOST:PORT it also
sends --flood-count pings to that node as fast as it can and counts the replies.
Lines on stdout: `READY port=N`, `FLOOD sent=N answered=M` (after --flood-secs), and at the end
`BAD_ANSWERS n=N` (queries answered badly) and `EXIT`. Stops at
the end of stdin, when --parent-pid is gone, or after --max-secs.
"""

import argparse
import os
import socket
import sys
import threading
import time

from btlib import STOP, bencode, say, watch_stdin



def field(data, key):
    """The byte string after `key` in a flat bencoded dictionary (enough for KRPC's t and q)."""
    k = b"%d:%s" % (len(key), key)
    at = data.find(k)
    if at < 0:
        return None
    at += len(k)
    colon = data.find(b":", at)
    n = int(data[at:colon])
    return data[colon + 1:colon + 1 + n]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--flood")
    p.add_argument("--flood-count", type=int, default=3000)
    p.add_argument("--flood-secs", type=float, default=3.0)
    p.add_argument("--max-secs", type=float, default=300.0)
    p.add_argument("--parent-pid", type=int, default=0)
    args = p.parse_args()
    threading.Thread(target=watch_stdin, daemon=True).start()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    my_id = os.urandom(20)
    say(f"READY port={s.getsockname()[1]}")
    t0 = time.monotonic()
    turn = 0
    flood_sent = 0
    flood_answered = 0
    flood_reported = False
    flood_to = None
    if args.flood:
        host, port = args.flood.rsplit(":", 1)
        flood_to = (host, int(port))
    while not STOP.is_set() and time.monotonic() - t0 < args.max_secs:
        if args.parent_pid and not os.path.exists(f"/proc/{args.parent_pid}"):
            break
        if flood_to and flood_sent < args.flood_count:
            for _ in range(min(500, args.flood_count - flood_sent)):
                q = bencode({b"t": b"fl", b"y": b"q", b"q": b"ping", b"a": {b"id": my_id}})
                s.sendto(q, flood_to)
                flood_sent += 1
        if flood_to and not flood_reported and time.monotonic() - t0 > args.flood_secs:
            say(f"FLOOD sent={flood_sent} answered={flood_answered}")
            flood_reported = True
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            continue
        tid = field(data, b"t") or b""
        if b"1:y1:r" in data and tid == b"fl":
            flood_answered += 1
            continue
        if b"1:y1:q" not in data:
            continue
        q = field(data, b"q")
        if q == b"ping":
            s.sendto(bencode({b"t": tid, b"y": b"r", b"r": {b"id": my_id}}), addr)
            continue
        turn += 1
        kind = turn % 4
        if kind == 0:
            s.sendto(b"d1:rd2:id" + os.urandom(40) + b"garbage", addr)
        elif kind == 1:
            big = bencode({b"t": tid, b"y": b"r", b"r": {b"id": my_id, b"nodes": os.urandom(60000)}})
            s.sendto(big[:65000], addr)
        elif kind == 2:
            s.sendto(bencode({b"t": b"zz" + tid, b"y": b"r", b"r": {b"id": my_id, b"nodes": b""}}), addr)
    say(f"BAD_ANSWERS n={turn}")
    say("EXIT")


if __name__ == "__main__":
    main()
