#!/usr/bin/env python3
"""Black-hole peers for pixtorrent's stalled-peer tests and benchmark (standard library only): N
listeners on one address, each a peer that handshakes, sends a full bitfield and an unchoke, then
reads and counts every request and never sends a block -- a seeder that stalls every request.

Each listener answers the handshake for --info-hash only (with the extension bit and a minimal BEP 10
handshake advertising `reqq`, unless --no-ext), then sends keep-alives every 30 s so it looks alive.
With --announce URL each port is announced to that HTTP tracker (event=started, left=0, so a seed)
before READY, and `stopped` is announced on exit.

Lines on stdout, one fact each:
  READY ports=P1,P2,...                 listening (and announced)
  CONNECT port=P peer=IP:PORT           a connection accepted on port P
  HANDSHAKE port=P peer=IP:PORT ok=1|0  its handshake read (ok=0: wrong protocol or info-hash: closed)
  CLOSE port=P peer=IP:PORT requests=N why=...
  PORT port=P connections=K requests=N  per port, at exit
  EXIT connections=K requests=N         last line
  ERROR message                         fatal; exit status 2
Stops on SIGTERM/SIGINT, at the end of stdin (--stop-on-eof), when --parent-pid is gone, or after
--max-secs.
"""

import argparse
import asyncio
import os
import random
import signal
import struct
import sys
import threading
import urllib.parse
import urllib.request

PROTOCOL = b"\x13BitTorrent protocol"
MAX_MESSAGE = 1 << 18  # longest message accepted: a bitfield for 2 million pieces
HANDSHAKE_TIMEOUT = 10.0
KEEPALIVE_SECS = 30.0
MAX_CONNECTIONS = 400  # over the whole run, all ports together; later ones are closed at once
MAX_PORTS = 64
REQUEST = 6


def say(line):
    print(line, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--info-hash", required=True, help="40 hex digits")
    p.add_argument("--pieces", type=int, required=True, help="pieces in the torrent (bitfield size)")
    p.add_argument("--count", type=int, default=8, help=f"listeners (at most {MAX_PORTS})")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on")
    p.add_argument("--announce", default="", help="HTTP tracker announce URL to register each port at")
    p.add_argument("--reqq", type=int, default=250, help="the reqq advertised in the BEP 10 handshake")
    p.add_argument("--no-ext", action="store_true", help="no extension bit, no BEP 10 handshake")
    p.add_argument("--max-secs", type=float, default=300.0, help="hard bound on the lifetime")
    p.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone")
    p.add_argument("--stop-on-eof", action="store_true", help="stop at the end of stdin")
    args = p.parse_args()
    if not 1 <= args.count <= MAX_PORTS:
        p.error(f"--count must be 1..{MAX_PORTS}")
    if not 1 <= args.pieces <= 1 << 21:
        p.error("--pieces must be 1..2097152")
    try:
        args.hash = bytes.fromhex(args.info_hash)
    except ValueError:
        p.error("--info-hash is not hex")
    if len(args.hash) != 20:
        p.error("--info-hash must be 20 bytes")
    return args


def message(msg_id, payload=b""):
    return struct.pack(">IB", 1 + len(payload), msg_id) + payload


def bitfield(pieces):
    full, rest = divmod(pieces, 8)
    tail = bytes([(0xFF << (8 - rest)) & 0xFF]) if rest else b""
    return message(5, b"\xff" * full + tail)


def ext_handshake(reqq):
    body = b"d1:md" + b"e4:reqqi%de1:v13:blackhole 1.0e" % reqq
    return message(20, b"\x00" + body)


class Stats:
    def __init__(self):
        self.connections = 0
        self.per_port = {}  # port -> [connections, requests]
        self.tasks = set()  # the connections still open

    def add(self, port, conns=0, reqs=0):
        entry = self.per_port.setdefault(port, [0, 0])
        entry[0] += conns
        entry[1] += reqs


async def read_exact(reader, n, timeout):
    return await asyncio.wait_for(reader.readexactly(n), timeout)


async def keepalive(writer):
    while True:
        await asyncio.sleep(KEEPALIVE_SECS)
        writer.write(b"\x00\x00\x00\x00")
        await writer.drain()


async def serve(reader, writer, port, args, stats, peer_id):
    peer = writer.get_extra_info("peername")
    peer = f"{peer[0]}:{peer[1]}" if peer else "?"
    stats.connections += 1
    if stats.connections > MAX_CONNECTIONS:
        writer.close()
        return
    stats.add(port, conns=1)
    say(f"CONNECT port={port} peer={peer}")
    requests, why, ka = 0, "eof", None
    task = asyncio.current_task()
    stats.tasks.add(task)
    try:
        theirs = await read_exact(reader, 68, HANDSHAKE_TIMEOUT)
        ok = theirs[:20] == PROTOCOL and theirs[28:48] == args.hash
        say(f"HANDSHAKE port={port} peer={peer} ok={int(ok)}")
        if not ok:
            why = "bad handshake"
            return
        reserved = bytearray(8)
        if not args.no_ext:
            reserved[5] |= 0x10
        out = PROTOCOL + bytes(reserved) + args.hash + peer_id
        if not args.no_ext:
            out += ext_handshake(args.reqq)
        out += bitfield(args.pieces) + message(1)  # bitfield, unchoke
        writer.write(out)
        await writer.drain()
        ka = asyncio.ensure_future(keepalive(writer))
        while True:
            head = await reader.readexactly(4)
            (length,) = struct.unpack(">I", head)
            if length > MAX_MESSAGE:
                why = f"message of {length} bytes"
                return
            body = await reader.readexactly(length) if length else b""
            if body[:1] == bytes([REQUEST]):
                requests += 1
                stats.add(port, reqs=1)
    except asyncio.IncompleteReadError:
        why = "eof"
    except asyncio.TimeoutError:
        why = "handshake timeout"
    except (ConnectionError, OSError) as e:
        why = type(e).__name__
    except asyncio.CancelledError:
        why = "stopping"
    finally:
        stats.tasks.discard(task)
        if ka:
            ka.cancel()
        say(f"CLOSE port={port} peer={peer} requests={requests} why={why}")
        writer.close()


def announce(url, info_hash, peer_id, port, event):
    query = urllib.parse.urlencode({
        "info_hash": info_hash, "peer_id": peer_id, "port": port, "uploaded": 0, "downloaded": 0,
        "left": 0, "event": event, "compact": 1, "numwant": 0,
    })
    sep = "&" if "?" in url else "?"
    # No proxy: the tracker is on a local address.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url + sep + query, timeout=5) as reply:
        body = reply.read(1 << 16)
    if b"failure reason" in body:
        raise RuntimeError(f"tracker refused port {port}: {body[:200]!r}")


async def watch(args, stop):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.max_secs
    while not stop.is_set():
        if args.parent_pid and os.getppid() != args.parent_pid:
            say("ERROR parent process is gone")
            break
        if loop.time() > deadline:
            break
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
    stop.set()


async def main_async(args):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.stop_on_eof:

        def wait_eof():
            try:
                sys.stdin.read()
            except (OSError, ValueError):
                pass
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=wait_eof, daemon=True).start()
    stats = Stats()
    servers, ids = [], {}
    for i in range(args.count):
        peer_id = b"-BH0100-" + bytes(random.choice(b"0123456789abcdef") for _ in range(12))
        holder = {}

        def handler(r, w, holder=holder, peer_id=peer_id):
            return serve(r, w, holder["port"], args, stats, peer_id)

        srv = await asyncio.start_server(handler, args.ip, 0)
        port = srv.sockets[0].getsockname()[1]
        holder["port"] = port
        stats.add(port)
        servers.append(srv)
        ids[port] = peer_id
    try:
        if args.announce:
            for port, peer_id in ids.items():
                await loop.run_in_executor(None, announce, args.announce, args.hash, peer_id, port,
                                           "started")
    except (OSError, RuntimeError) as e:
        say(f"ERROR announce: {e}")
        return 2
    say("READY ports=" + ",".join(str(p) for p in ids))
    await watch(args, stop)
    for srv in servers:
        srv.close()
    for task in list(stats.tasks):
        task.cancel()
    await asyncio.gather(*stats.tasks, return_exceptions=True)
    if args.announce:
        for port, peer_id in ids.items():
            try:
                await loop.run_in_executor(None, announce, args.announce, args.hash, peer_id, port,
                                           "stopped")
            except (OSError, RuntimeError):
                pass
    total = 0
    for port, (conns, reqs) in stats.per_port.items():
        say(f"PORT port={port} connections={conns} requests={reqs}")
        total += reqs
    say(f"EXIT connections={stats.connections} requests={total}")
    return 0


def main():
    args = parse_args()
    try:
        code = asyncio.run(main_async(args))
    except KeyboardInterrupt:
        code = 0
    sys.stdout.flush()
    os._exit(code)  # the stdin reader thread may still be blocked on a read


if __name__ == "__main__":
    main()
