#!/usr/bin/python3
"""A hostile metadata peer for pixtorrent's magnet tests (stdlib only). It listens on 127.0.0.1,
answers the BitTorrent handshake with the extension bit, offers ut_metadata in its BEP 10 handshake
and then lies:
  --mode huge     claims a metadata_size of 1 GiB (far over any .torrent limit)
  --mode garbage  claims --size bytes (the real size) and answers every request with random bytes,
                  each after --delay seconds (so an honest source joins while it holds the piece)
Lines on stdout: `READY port=N`, then `REQUESTS n=N` for each metadata request seen. Stops at the end
of stdin, when --parent-pid is gone, or after --max-secs.
"""

import argparse
import os
import random
import socket
import struct
import sys
import threading
import time

from btlib import bencode, read_exact, say


def serve(conn, args, counter):
    try:
        hs = read_exact(conn, 68)
        info_hash = hs[28:48]
        reserved = bytearray(8)
        reserved[5] |= 0x10
        conn.sendall(b"\x13BitTorrent protocol" + bytes(reserved) + info_hash + b"-XX0001-badmetadata!")
        size = 1 << 30 if args.mode == "huge" else args.size
        ext = bencode({b"m": {b"ut_metadata": 3}, b"metadata_size": size, b"v": b"bad metadata"})
        conn.sendall(struct.pack(">IBB", 2 + len(ext), 20, 0) + ext)
        their_id = None
        while True:
            (length,) = struct.unpack(">I", read_exact(conn, 4))
            if length == 0:
                continue
            if length > 1 << 20:
                return
            body = read_exact(conn, length)
            if body[0] != 20:
                continue
            if body[1] == 0:
                if b"ut_metadatai" in body:
                    at = body.index(b"ut_metadatai") + len(b"ut_metadatai")
                    their_id = int(body[at:body.index(b"e", at)])
                continue
            if body[1] != 3 or their_id is None:
                continue
            counter[0] += 1
            say(f"REQUESTS n={counter[0]}")
            payload = body[2:]
            at = payload.index(b"5:piecei") + len(b"5:piecei")
            piece = int(payload[at:payload.index(b"e", at)])
            data_len = min(16384, max(0, size - piece * 16384))
            head = bencode({b"msg_type": 1, b"piece": piece, b"total_size": size})
            data = bytes(random.getrandbits(8) for _ in range(data_len))
            time.sleep(args.delay)
            msg = bytes([20, their_id]) + head + data
            conn.sendall(struct.pack(">I", len(msg)) + msg)
    except (EOFError, OSError, ValueError):
        pass
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["huge", "garbage"], required=True)
    p.add_argument("--size", type=int, default=0, help="garbage: the metadata size to claim")
    p.add_argument("--delay", type=float, default=0.0, help="garbage: seconds before each answer")
    p.add_argument("--parent-pid", type=int, default=0)
    p.add_argument("--max-secs", type=float, default=300.0)
    args = p.parse_args()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    s.settimeout(0.2)
    say(f"READY port={s.getsockname()[1]}")
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    counter = [0]
    t0 = time.monotonic()
    while not stop.is_set() and time.monotonic() - t0 < args.max_secs:
        if args.parent_pid and os.getppid() != args.parent_pid:
            break
        try:
            conn, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(conn, args, counter), daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
