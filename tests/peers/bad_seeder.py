#!/usr/bin/env python3
"""A corrupting seeder for pixtorrent's interop tests (standard library only): a minimal BEP 3 seeder that
announces itself to an HTTP tracker, accepts handshakes, sends a full bitfield, unchokes whoever is
interested and answers requests from the real data -- except that the blocks of chosen pieces are
served with wrong bytes (every --corrupt-every'th piece by default, or --corrupt-pieces).

Lines on stdout, one fact each:
  READY port=N                              listening on N and the tracker accepted the announce
  CONNECT peer=IP:PORT n=K                  K-th connection accepted
  HANDSHAKE peer=IP:PORT ok=1|0 id=PREFIX   after the peer's handshake (first 8 bytes of its peer id)
  PIECE peer=IP:PORT piece=I corrupt=1|0    first block of piece I served on this connection
  CLOSE peer=IP:PORT blocks=N bytes=N why=...
  ERROR message                             fatal; exit status 2
  EXIT connections=K blocks=N bytes=N       last line on a clean exit
Stops on SIGTERM/SIGINT (announcing `stopped`), when --parent-pid is gone, or after --max-secs.
"""

import argparse
import asyncio
import hashlib
import os
import signal
import sys
import urllib.parse
import urllib.request

MAX_MESSAGE = 1 << 18  # longest message accepted from a peer: a bitfield for 2 million pieces
MAX_REQUEST = 1 << 17  # longest block served; clients ask for 16 KiB
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 120.0
MAX_CONNECTIONS = 200  # connections accepted over the whole run; later ones are closed at once
CORRUPT = bytes(b ^ 0x5A for b in range(256))  # translation table: every byte changed


def say(line):
    print(line, flush=True)


def bdecode(data, i=0):
    """Decodes one value at i; returns (value, end). Dict values also record their raw span."""
    c = data[i : i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1 : end]), end + 1
    if c == b"l":
        out, i = [], i + 1
        while data[i : i + 1] != b"e":
            v, i = bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        out, start, i = {}, i, i + 1
        while data[i : i + 1] != b"e":
            k, i = bdecode(data, i)
            vstart = i
            v, i = bdecode(data, i)
            out[k] = v
            out[b"__raw__" + k] = data[vstart:i]
        return out, i + 1
    colon = data.index(b":", i)
    n = int(data[i:colon])
    return data[colon + 1 : colon + 1 + n], colon + 1 + n


class Torrent:
    """The metainfo and random access to the data of a v1 torrent."""

    def __init__(self, path, data_dir):
        meta, _ = bdecode(open(path, "rb").read())
        info = meta[b"info"]
        self.info_hash = hashlib.sha1(meta[b"__raw__info"]).digest()
        self.announce = meta.get(b"announce", b"").decode()
        self.piece_length = info[b"piece length"]
        self.hashes = info[b"pieces"]
        self.pieces = len(self.hashes) // 20
        name = info[b"name"].decode()
        if b"files" in info:
            self.files = [
                (os.path.join(data_dir, name, *(p.decode() for p in f[b"path"])), f[b"length"])
                for f in info[b"files"]
            ]
        else:
            self.files = [(os.path.join(data_dir, name), info[b"length"])]
        self.total = sum(length for _, length in self.files)

    def read(self, offset, length):
        out, pos = bytearray(), 0
        for path, size in self.files:
            if length == 0:
                break
            if offset < pos + size:
                start = offset - pos
                n = min(size - start, length)
                with open(path, "rb") as f:
                    f.seek(start)
                    out += f.read(n)
                offset += n
                length -= n
            pos += size
        return bytes(out)


class Seeder:
    def __init__(self, args, torrent):
        self.args = args
        self.t = torrent
        self.peer_id = b"-BS0001-" + os.urandom(6).hex().encode()
        self.connections = 0
        self.blocks = 0
        self.bytes = 0
        if args.corrupt_pieces is not None:
            self.corrupt = {int(x) for x in args.corrupt_pieces.split(",") if x}
        else:
            self.corrupt = {i for i in range(torrent.pieces) if i % args.corrupt_every == 0}

    def bitfield(self):
        bits = bytearray((self.t.pieces + 7) // 8)
        for i in range(self.t.pieces):
            bits[i // 8] |= 0x80 >> (i % 8)
        return bytes(bits)

    async def handle(self, reader, writer):
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        self.connections += 1
        say(f"CONNECT peer={peer} n={self.connections}")
        blocks, sent, why = 0, 0, "closed by peer"
        try:
            if self.connections > MAX_CONNECTIONS:
                why = "too many connections"
                return
            hs = await asyncio.wait_for(reader.readexactly(68), HANDSHAKE_TIMEOUT)
            ok = hs[0] == 19 and hs[1:20] == b"BitTorrent protocol" and hs[28:48] == self.t.info_hash
            prefix = "".join(chr(c) if 33 <= c < 127 else "?" for c in hs[48:56])
            say(f"HANDSHAKE peer={peer} ok={int(ok)} id={prefix}")
            if not ok:
                why = "bad handshake"
                return
            writer.write(bytes([19]) + b"BitTorrent protocol" + bytes(8) + self.t.info_hash + self.peer_id)
            bf = self.bitfield()
            writer.write((len(bf) + 1).to_bytes(4, "big") + b"\x05" + bf)
            await writer.drain()
            seen = set()
            while True:
                n = int.from_bytes(await asyncio.wait_for(reader.readexactly(4), IDLE_TIMEOUT), "big")
                if n == 0:
                    continue  # keep-alive
                if n > MAX_MESSAGE:
                    why = f"message of {n} bytes"
                    return
                msg = await asyncio.wait_for(reader.readexactly(n), IDLE_TIMEOUT)
                if msg[0] == 2:  # interested
                    writer.write(b"\x00\x00\x00\x01\x01")  # unchoke
                elif msg[0] == 6 and n == 13:  # request
                    index, begin, length = (int.from_bytes(msg[k : k + 4], "big") for k in (1, 5, 9))
                    offset = index * self.t.piece_length + begin
                    piece_end = min((index + 1) * self.t.piece_length, self.t.total)
                    valid = index < self.t.pieces and 0 < length <= MAX_REQUEST
                    if not valid or offset + length > piece_end:
                        why = f"bad request {index}/{begin}/{length}"
                        return
                    data = self.t.read(offset, length)
                    bad = index in self.corrupt
                    if bad:
                        data = data.translate(CORRUPT)
                    if index not in seen:
                        seen.add(index)
                        say(f"PIECE peer={peer} piece={index} corrupt={int(bad)}")
                    writer.write((9 + length).to_bytes(4, "big") + b"\x07" + msg[1:9] + data)
                    blocks += 1
                    sent += length
                    self.blocks += 1
                    self.bytes += length
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        except asyncio.TimeoutError:
            why = "timeout"
        except OSError as e:
            why = f"{type(e).__name__}"
        finally:
            say(f"CLOSE peer={peer} blocks={blocks} bytes={sent} why={why.replace(' ', '_')}")
            writer.close()

    def announce(self, url, port, event):
        params = {
            "info_hash": self.t.info_hash,
            "peer_id": self.peer_id,
            "port": port,
            "uploaded": self.bytes,
            "downloaded": 0,
            "left": 0,
            "event": event,
            "compact": 1,
            "numwant": 0,
        }
        # Percent-encode every byte that is not unreserved (`quote_plus` would send a space as `+`).
        quote = urllib.parse.quote
        query = "&".join(
            f"{k}={quote(v if isinstance(v, bytes) else str(v), safe='')}" for k, v in params.items()
        )
        sep = "&" if "?" in url else "?"
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy from the env
        with direct.open(url + sep + query, timeout=10) as reply:
            body = reply.read(1 << 20)
        answer, _ = bdecode(body)
        if b"failure reason" in answer:
            raise RuntimeError(answer[b"failure reason"].decode(errors="replace"))


async def run(args):
    torrent = Torrent(args.torrent, args.dir)
    seeder = Seeder(args, torrent)
    host, port = args.listen.rsplit(":", 1)
    server = await asyncio.start_server(seeder.handle, host.strip("[]"), int(port))
    port = server.sockets[0].getsockname()[1]
    url = args.announce or torrent.announce
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if url:
        try:
            await loop.run_in_executor(None, seeder.announce, url, port, "started")
        except Exception as e:  # noqa: BLE001 -- any failure is fatal and reported
            say(f"ERROR announce to {url} failed: {e}")
            return 2
    say(f"READY port={port}")
    start = loop.time()
    code = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
        if args.parent_pid and os.getppid() != args.parent_pid:
            say("ERROR parent process is gone")
            code = 2
            break
        if loop.time() - start > args.max_secs:
            say(f"ERROR still running after --max-secs {args.max_secs}")
            code = 2
            break
    server.close()
    if url:
        try:
            await asyncio.wait_for(loop.run_in_executor(None, seeder.announce, url, port, "stopped"), 12)
        except Exception:  # noqa: BLE001 -- the tracker may be gone already
            pass
    if code == 0:
        say(f"EXIT connections={seeder.connections} blocks={seeder.blocks} bytes={seeder.bytes}")
    return code


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--torrent", required=True)
    p.add_argument("--dir", required=True, help="holds the torrent's files (the save path)")
    p.add_argument("--listen", default="127.0.0.1:0", help="IP:PORT (port 0: any)")
    p.add_argument("--announce", help="tracker announce URL (default: the torrent's)")
    p.add_argument("--corrupt-every", type=int, default=4, help="corrupt pieces whose index %% N == 0")
    p.add_argument("--corrupt-pieces", help="comma-separated piece indexes to corrupt instead")
    p.add_argument("--max-secs", type=float, default=900.0)
    p.add_argument("--parent-pid", type=int, default=0)
    args = p.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
