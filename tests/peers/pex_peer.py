#!/usr/bin/python3
"""A scripted PEX peer for pixtorrent's private-torrent test (stdlib only). It connects to --connect,
handshakes for --info-hash with the extension bit, offers ut_pex in its BEP 10 handshake, and sends
one ut_pex message naming --pex-to (with the id the other side gave ut_pex, else 1: a peer that
sends PEX anyway). Then it listens until --secs have passed.
Lines on stdout: `THEIR_M ut_pex=1|0` (whether the other side offered ut_pex), `PEX_SENT`,
`PEX_RECEIVED bytes=N` for each ut_pex message received, and `END`.
"""

import argparse
import socket
import struct
import time

from btlib import bencode, say

OUR_PEX_ID = 7


def read_exact(conn, n, deadline):
    buf = b""
    while len(buf) < n:
        conn.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def ext_id(body, name):
    """The id `name` has in a bencoded extended handshake's `m`, or None (a plain search: enough for
    the dictionaries pixtorrent sends)."""
    key = b"%d:%si" % (len(name), name)
    if key not in body:
        return None
    at = body.index(key) + len(key)
    return int(body[at:body.index(b"e", at)])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--connect", required=True)
    p.add_argument("--info-hash", required=True)
    p.add_argument("--pex-to", required=True)
    p.add_argument("--secs", type=float, default=10.0)
    args = p.parse_args()
    deadline = time.monotonic() + args.secs
    host, port = args.connect.rsplit(":", 1)
    conn = socket.create_connection((host, int(port)), timeout=5)
    reserved = bytearray(8)
    reserved[5] |= 0x10
    info_hash = bytes.fromhex(args.info_hash)
    conn.sendall(b"\x13BitTorrent protocol" + bytes(reserved) + info_hash + b"-XX0001-pexpeer00000")
    read_exact(conn, 68, deadline)
    ext = bencode({b"m": {b"ut_pex": OUR_PEX_ID}, b"v": b"pex peer"})
    conn.sendall(struct.pack(">IBB", 2 + len(ext), 20, 0) + ext)
    to_host, to_port = args.pex_to.rsplit(":", 1)
    added = socket.inet_aton(to_host) + struct.pack(">H", int(to_port))
    sent = False
    try:
        while time.monotonic() < deadline:
            (length,) = struct.unpack(">I", read_exact(conn, 4, deadline))
            if length == 0:
                continue
            if length > 1 << 20:
                break
            body = read_exact(conn, length, deadline)
            if body[0] != 20:
                continue
            if body[1] == 0 and not sent:
                theirs = ext_id(body, b"ut_pex")
                say("THEIR_M ut_pex=%d" % (1 if theirs else 0))
                msg = bencode({b"added": added, b"added.f": b"\x10", b"dropped": b""})
                conn.sendall(struct.pack(">IBB", 2 + len(msg), 20, theirs or 1) + msg)
                sent = True
                say("PEX_SENT")
            elif body[1] == OUR_PEX_ID:
                say("PEX_RECEIVED bytes=%d" % len(body))
    except (EOFError, OSError):
        pass
    say("END")


if __name__ == "__main__":
    main()
