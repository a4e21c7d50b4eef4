#!/usr/bin/python3
"""A TCP delay line: accepts on --listen, dials --target for each connection, and forwards every chunk in
both directions DELAY ms after it was read, while reading continues (a delay line, not stop-and-wait:
throughput is kept, only latency is added). Stands in for netem, which this kernel lacks.

  delay_relay.py --listen 127.0.0.1:PORT --target 127.0.0.1:SEEDER --delay-ms 25
      prints `READY port=N`, then one `CLOSED to_target=N from_target=N` line per finished connection
  delay_relay.py selftest [--delay-ms 25] [--mb 2048]
      pushes MB through a relay (its own process) into a sink and prints the throughput: its ceiling

Each direction has a reader thread (recv, timestamp, queue) and a writer thread (sleep until the head
chunk is due, send); at most --buffer-mb MiB wait per direction before reading pauses (backpressure).
Sockets get TCP_NODELAY so small messages (requests) are not held back by Nagle.
"""
import argparse
import collections
import os
import socket
import subprocess
import sys
import threading
import time

CHUNK = 1 << 20


def addr(s):
    ip, port = s.rsplit(":", 1)
    return ip, int(port)


def kill_both(a, b):
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Direction:
    """One direction of one connection: src -> (delay) -> dst."""

    def __init__(self, src, dst, delay, limit, other_dir_socks):
        self.src, self.dst, self.delay, self.limit = src, dst, delay, limit
        self.q = collections.deque()
        self.queued = 0
        self.cond = threading.Condition()
        self.dead = False
        self.bytes = 0
        self.socks = other_dir_socks

    def reader(self):
        try:
            while True:
                data = self.src.recv(CHUNK)
                due = time.monotonic() + self.delay
                with self.cond:
                    if self.dead:
                        return
                    self.q.append((due, data))
                    self.queued += len(data)
                    self.cond.notify_all()
                    if not data:
                        return
                    while self.queued > self.limit and not self.dead:
                        self.cond.wait()
        except OSError:
            with self.cond:
                self.q.append((0.0, None))
                self.cond.notify_all()

    def writer(self):
        try:
            while True:
                with self.cond:
                    while not self.q:
                        self.cond.wait()
                    now = time.monotonic()
                    due = self.q[0][0]
                    if due > now:
                        self.cond.wait(due - now)
                        continue
                    ready = []
                    while self.q and self.q[0][0] <= now:
                        ready.append(self.q.popleft()[1])
                    self.queued -= sum(len(d) for d in ready if d)
                    self.cond.notify_all()
                for d in ready:
                    if d is None:  # read error: give up on the whole connection
                        raise OSError("peer error")
                    if not d:  # clean EOF: pass the half-close on
                        self.dst.shutdown(socket.SHUT_WR)
                        return
                    self.dst.sendall(d)
                    self.bytes += len(d)
        except OSError:
            with self.cond:
                self.dead = True
                self.cond.notify_all()
            kill_both(*self.socks)


def serve_conn(client, target, delay, limit):
    try:
        up = socket.create_connection(target, timeout=10)
        up.settimeout(None)
    except OSError as e:
        print(f"DIAL_FAILED {e}", flush=True)
        client.close()
        return
    for s in (client, up):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    to_t = Direction(client, up, delay, limit, (client, up))
    from_t = Direction(up, client, delay, limit, (client, up))
    threads = [threading.Thread(target=f, daemon=True)
               for f in (to_t.reader, to_t.writer, from_t.reader, from_t.writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    up.close()
    print(f"CLOSED to_target={to_t.bytes} from_target={from_t.bytes}", flush=True)


def relay(args):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(addr(args.listen))
    ls.listen(128)
    print(f"READY port={ls.getsockname()[1]}", flush=True)
    target, delay, limit = addr(args.target), args.delay_ms / 1000.0, args.buffer_mb << 20
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve_conn, args=(c, target, delay, limit), daemon=True).start()


def selftest(args):
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(1)
    got = [0]
    first = [0.0]

    def drain():
        c, _ = sink.accept()
        buf = bytearray(CHUNK)
        while True:
            n = c.recv_into(buf)
            if not n:
                break
            if not got[0]:
                first[0] = time.monotonic()
            got[0] += n
        c.close()

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--listen", "127.0.0.1:0",
                          "--target", f"127.0.0.1:{sink.getsockname()[1]}",
                          "--delay-ms", str(args.delay_ms)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(p.stdout.readline().split("=")[1])
        s = socket.create_connection(("127.0.0.1", port))
        block = memoryview(os.urandom(CHUNK))
        total = args.mb << 20
        t0 = time.monotonic()
        sent = 0
        while sent < total:
            s.sendall(block)
            sent += CHUNK
        s.shutdown(socket.SHUT_WR)
        t.join(120)
        dt = time.monotonic() - t0
        s.close()
        ok = "ok" if got[0] == total else f"LOST {total - got[0]} bytes"
        with open(f"/proc/{p.pid}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()
        relay_cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
        print(f"relay ceiling (delay {args.delay_ms} ms, one stream, {args.mb} MiB): "
              f"{total / dt / 1e6:.0f} MB/s, first byte after {(first[0] - t0) * 1000:.1f} ms, "
              f"relay CPU {relay_cpu:.2f} s, {ok}")
    finally:
        p.terminate()
        p.wait()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "selftest":
        ap = argparse.ArgumentParser()
        ap.add_argument("selftest")
        ap.add_argument("--delay-ms", type=float, default=25)
        ap.add_argument("--mb", type=int, default=2048)
        selftest(ap.parse_args())
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--target", required=True)
    ap.add_argument("--delay-ms", type=float, default=25)
    ap.add_argument("--buffer-mb", type=int, default=64, help="most bytes queued per direction")
    relay(ap.parse_args())


if __name__ == "__main__":
    main()
