#!/usr/bin/python3
"""A UDP delay line (for uTP): receives datagrams on --listen, forwards each to --target DELAY ms after it
arrived, and each reply from --target back to its client DELAY ms after that. Stands in for netem, which
this kernel lacks; delay_relay.py is the TCP one.

  udp_delay_relay.py --listen 127.0.0.1:PORT --target 127.0.0.1:SEEDER --delay-ms 25 [--parent-pid PID]
      prints `READY port=N`, then a cumulative `STATS ...` line every --stats-secs while traffic moves
  udp_delay_relay.py selftest [--delay-ms 25] [--mb 256]
      pushes MB through a relay (its own process) into a sink, a window at a time, and prints the rate

Each client address gets its own upstream socket (bound on the listen IP, connected to --target), so the
target sees one peer per client. Every datagram is timestamped when read and queued; one sender per
direction sends whatever is due (a constant delay keeps the order). A queue holds at most --queue-mb MiB:
past that, datagrams are dropped and counted, as a router would. Idle clients are forgotten after
--idle-secs; at most --max-clients at once. Exits when --parent-pid (default: the parent at start) is
gone, on SIGTERM/SIGINT, or after --max-secs.

STATS fields (all cumulative): clients (seen so far), to_target/from_target (payload bytes forwarded),
pkts_to/pkts_from, data_from (uTP ST_DATA packets from the target), resent_from (those whose seq_nr was
not new: retransmissions by the target), dropped (queue full or send refused), late_ms_max (the worst
time a datagram was sent past its due time: how far the relay itself fell behind), data_bytes_from (bytes
of those ST_DATA datagrams), and, sampled at each new ST_DATA datagram from the target: inflight_n (the
samples), inflight_sum (packets the target had sent past the last ack_nr the relay had passed on to it)
and wnd_sum (the wnd_size of that last packet from the client): their means are the target's data in
flight and the client's advertised receive window.
"""
import argparse
import asyncio
import collections
import os
import signal
import socket
import struct
import subprocess
import sys
import time

BUF = 4 << 20  # socket buffers (the kernel caps them at net.core.[rw]mem_max)
MAXDGRAM = 65536
# uTP header from offset 2: connection_id, (timestamp, timestamp_diff skipped), wnd_size, (seq_nr), ack_nr
HDR = struct.Struct(">H8xI2xH")


def addr(s):
    ip, port = s.rsplit(":", 1)
    return ip.strip("[]"), int(port)


def udp_socket(bind):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        s.setsockopt(socket.SOL_SOCKET, opt, BUF)
    s.bind(bind)
    s.setblocking(False)
    return s


class Stats:
    def __init__(self):
        self.clients = 0
        self.to_target = self.from_target = 0
        self.pkts_to = self.pkts_from = 0
        self.data_from = self.resent_from = 0
        self.dropped = 0
        self.late_max = 0.0
        self.data_bytes_from = 0
        self.inflight_sum = self.inflight_n = self.wnd_sum = 0

    def line(self):
        return (f"STATS clients={self.clients} to_target={self.to_target} from_target={self.from_target} "
                f"pkts_to={self.pkts_to} pkts_from={self.pkts_from} data_from={self.data_from} "
                f"resent_from={self.resent_from} dropped={self.dropped} late_ms_max={self.late_max * 1000:.1f} "
                f"data_bytes_from={self.data_bytes_from} inflight_n={self.inflight_n} "
                f"inflight_sum={self.inflight_sum} wnd_sum={self.wnd_sum}")


class Queue:
    """One direction: (due, socket, destination or None, datagram, client or None) in arrival order, bounded
    in bytes. A client in an entry (towards the target) notes the uTP ack and window it carried when sent."""

    def __init__(self, loop, delay, limit, stats):
        self.loop, self.delay, self.limit, self.stats = loop, delay, limit, stats
        self.q = collections.deque()
        self.bytes = 0
        self.timer = None

    def put(self, now, sock, dest, data, client=None):
        if self.bytes + len(data) > self.limit:
            self.stats.dropped += 1
            return
        self.q.append((now + self.delay, sock, dest, data, client))
        self.bytes += len(data)
        if self.timer is None:
            if self.delay <= 0:
                self.timer = self.loop.call_soon(self.flush)
            else:
                self.timer = self.loop.call_at(now + self.delay, self.flush)

    def flush(self):
        self.timer = None
        now = self.loop.time()
        q = self.q
        while q and q[0][0] <= now:
            due, sock, dest, data, client = q.popleft()
            self.bytes -= len(data)
            late = now - due
            if late > self.stats.late_max:
                self.stats.late_max = late
            try:
                if dest is None:
                    sock.send(data)
                else:
                    sock.sendto(data, dest)
            except (BlockingIOError, OSError):
                self.stats.dropped += 1
                continue
            if client is not None and len(data) >= 20 and data[0] & 0x0F == 1:
                # What the target knows from now on: acked up to ack_nr, window wnd_size.
                conn, wnd, ack = HDR.unpack_from(data, 2)
                client.acked[conn] = (ack, wnd)
        if q:
            self.timer = self.loop.call_at(q[0][0], self.flush)


class Client:
    def __init__(self, up):
        self.up = up
        self.last = 0.0
        self.seq = {}  # uTP connection id -> newest ST_DATA seq_nr seen from the target
        self.acked = {}  # the client's uTP connection id -> (ack_nr, wnd_size) of its last packet sent on


def seq_newer(a, b):
    """a is after b in uTP's 16-bit sequence space."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class Relay:
    def __init__(self, loop, args):
        self.loop = loop
        self.stats = Stats()
        self.listen_ip, _ = addr(args.listen)
        self.target = addr(args.target)
        delay, limit = args.delay_ms / 1000.0, int(args.queue_mb * (1 << 20))
        self.to_q = Queue(loop, delay, limit, self.stats)
        self.from_q = Queue(loop, delay, limit, self.stats)
        self.args = args
        self.clients = {}
        self.ls = udp_socket(addr(args.listen))
        loop.add_reader(self.ls.fileno(), self.on_client)

    def client(self, src, now):
        c = self.clients.get(src)
        if c is None:
            if len(self.clients) >= self.args.max_clients:
                return None
            up = udp_socket((self.listen_ip, 0))
            up.connect(self.target)
            c = Client(up)
            self.clients[src] = c
            self.stats.clients += 1
            self.loop.add_reader(up.fileno(), self.on_target, src, c)
        c.last = now
        return c

    def on_client(self):
        now = self.loop.time()
        st = self.stats
        for _ in range(256):  # a batch, then back to the loop
            try:
                data, src = self.ls.recvfrom(MAXDGRAM)
            except (BlockingIOError, InterruptedError):
                return
            c = self.client(src, now)
            if c is None:
                st.dropped += 1
                continue
            st.pkts_to += 1
            st.to_target += len(data)
            self.to_q.put(now, c.up, None, data, c)

    def on_target(self, src, c):
        now = self.loop.time()
        st = self.stats
        for _ in range(256):
            try:
                data = c.up.recv(MAXDGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ECONNREFUSED from an earlier send: the target is not there (yet)
                continue
            c.last = now
            st.pkts_from += 1
            st.from_target += len(data)
            # uTP header: type<<4|version, extension, connection_id, ts, ts_diff, wnd, seq_nr, ack_nr.
            if len(data) >= 20 and data[0] == 0x01:  # ST_DATA, version 1
                st.data_from += 1
                st.data_bytes_from += len(data)
                conn, seq = struct.unpack_from(">H", data, 2)[0], struct.unpack_from(">H", data, 16)[0]
                last = c.seq.get(conn)
                if last is None or seq_newer(seq, last):
                    c.seq[conn] = seq
                    # The target's data in flight as it sends this: packets after the client's last ack
                    # it has received (the client's id is this one plus or minus 1: who dialled).
                    seen = c.acked.get((conn + 1) & 0xFFFF) or c.acked.get((conn - 1) & 0xFFFF)
                    if seen is not None:
                        st.inflight_n += 1
                        st.inflight_sum += (seq - seen[0]) & 0xFFFF
                        st.wnd_sum += seen[1]
                else:
                    st.resent_from += 1
            self.from_q.put(now, self.ls, src, data)

    def expire(self):
        now = self.loop.time()
        for src, c in list(self.clients.items()):
            if now - c.last > self.args.idle_secs:
                self.loop.remove_reader(c.up.fileno())
                c.up.close()
                del self.clients[src]


async def relay_main(args):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    r = Relay(loop, args)
    print(f"READY port={r.ls.getsockname()[1]}", flush=True)
    parent = args.parent_pid or os.getppid()
    t0 = time.monotonic()
    last = None
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), args.stats_secs)
        except asyncio.TimeoutError:
            pass
        line = r.stats.line()
        if line != last:
            print(line, flush=True)
            last = line
        r.expire()
        if os.getppid() != parent or not os.path.exists(f"/proc/{parent}"):
            print("EXIT parent gone", flush=True)
            return
        if time.monotonic() - t0 > args.max_secs:
            print("EXIT --max-secs", flush=True)
            return
    print(r.stats.line(), flush=True)


def selftest(args):
    """Sender -> relay -> sink, the sink acknowledging through the relay: a window of --window-kb in flight."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUF)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--listen", "127.0.0.1:0",
                          "--target", f"127.0.0.1:{sink.getsockname()[1]}", "--delay-ms", str(args.delay_ms),
                          "--stats-secs", "0.2"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(p.stdout.readline().split("=")[1])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUF)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        total = (args.mb << 20) // args.size
        window = max(1, (args.window_kb << 10) // args.size)
        datagram = os.urandom(args.size)
        sent = got = acked = 0
        first = 0.0
        quiet = 0.05 + 2 * args.delay_ms / 1000  # nothing moving for this long: the rest was lost
        t0 = last_move = time.monotonic()
        while time.monotonic() < t0 + 120:
            while sent < total and sent - acked < window:
                try:
                    s.send(datagram)
                except BlockingIOError:
                    break
                sent += 1
            moved = False
            for _ in range(512):
                try:
                    _, peer = sink.recvfrom(MAXDGRAM)
                except BlockingIOError:
                    break
                moved = True
                if not got:
                    first = time.monotonic()
                got += 1
                if got % 16 == 0 or got == total:
                    sink.sendto(struct.pack(">I", got), peer)
            for _ in range(512):
                try:
                    acked = max(acked, struct.unpack(">I", s.recv(64))[0])
                except BlockingIOError:
                    break
                moved = True
            now = time.monotonic()
            if moved:
                last_move = now
            elif now - last_move > quiet:
                if sent >= total:
                    break
                acked = sent  # datagrams were lost: open the window again
                last_move = now
            if got >= total:
                break
            if not moved:
                time.sleep(0.0002)
        dt = (last_move if got < total else time.monotonic()) - t0
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
        stats = [ln for ln in out.splitlines() if ln.startswith("STATS")]
        dropped = stats[-1].split("dropped=")[1].split()[0] if stats else "?"
        late = stats[-1].split("late_ms_max=")[1].split()[0] if stats else "?"
        print(f"UDP relay ceiling (delay {args.delay_ms:g} ms, {args.size}-byte datagrams, {args.window_kb} KiB "
              f"in flight, {args.mb} MiB): {got * args.size / dt / 1e6:.0f} MB/s "
              f"({got / dt / 1000:.0f}k datagrams/s), first after {(first - t0) * 1000:.1f} ms, "
              f"{total - got} of {total} lost, relay dropped {dropped}, sent late by up to {late} ms")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "selftest":
        ap = argparse.ArgumentParser()
        ap.add_argument("selftest")
        ap.add_argument("--delay-ms", type=float, default=25)
        ap.add_argument("--mb", type=int, default=256)
        ap.add_argument("--size", type=int, default=1400, help="datagram size")
        ap.add_argument("--window-kb", type=int, default=2048, help="datagrams in flight, in KiB")
        selftest(ap.parse_args())
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--target", required=True)
    ap.add_argument("--delay-ms", type=float, default=25)
    ap.add_argument("--queue-mb", type=float, default=16, help="most bytes queued per direction, MiB")
    ap.add_argument("--max-clients", type=int, default=256)
    ap.add_argument("--idle-secs", type=float, default=120)
    ap.add_argument("--stats-secs", type=float, default=0.5)
    ap.add_argument("--max-secs", type=float, default=86400)
    ap.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone")
    asyncio.run(relay_main(ap.parse_args()))


if __name__ == "__main__":
    main()
