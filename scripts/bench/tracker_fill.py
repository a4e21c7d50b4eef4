#!/usr/bin/env python3
"""Fills a tracker with PEERS peers spread over SWARMS swarms (hashes from tracker_pool.py's
naming), over keep-alive HTTP (reconnecting when the server closes), with 4 threads. Prints
`FILLED n=N failures=F secs=S`.

  tracker_fill.py HOST:PORT PEERS SWARMS
"""
import hashlib
import http.client
import sys
import threading
import time
import urllib.parse


def worker(host, port, start, stop, step, swarms, out):
    conn, fails = None, 0
    for i in range(start, stop, step):
        h = hashlib.sha1(b"bench-%d" % (i % swarms)).digest()
        pid = b"-FL0001-" + (b"%012d" % i)
        q = "info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d&compact=1&event=started" % (
            urllib.parse.quote_from_bytes(h), urllib.parse.quote_from_bytes(pid), 1024 + i % 60000,
            0 if i % 5 == 0 else 1000)
        for _ in range(3):
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=10)
                conn.request("GET", "/announce?" + q)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200 or b"failure reason" in body:
                    fails += 1
                if r.getheader("connection", "").lower() == "close" or r.version == 10:
                    conn.close()
                    conn = None
                break
            except (OSError, http.client.HTTPException):
                conn = None
        else:
            fails += 1
    out.append(fails)


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    peers, swarms = int(sys.argv[2]), int(sys.argv[3])
    out, threads, t0 = [], [], time.monotonic()
    for k in range(4):
        t = threading.Thread(target=worker, args=(host, int(port), k, peers, 4, swarms, out))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    print("FILLED n=%d failures=%d secs=%.1f" % (peers, sum(out), time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    main()
