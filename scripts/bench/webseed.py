#!/usr/bin/python3
"""Helpers for the download benchmark's web-seed phase (BEP 19), run by scripts/bench-download.sh.

  webseed.py torrent BASE.torrent URL OUT   write OUT: BASE's very `info` bytes (same info-hash) and a
                                            `url-list` of URL, with no announce (no tracker at all)
  webseed.py check URL                      one 10-byte Range request; exit 1 unless it gets 206
  webseed.py stats STATUS_URL               nginx stub_status counters: `ACCEPTS REQUESTS`
  webseed.py log ACCESS_LOG                 one run's requests (nginx `webseed` log format) summarised
  webseed.py ratio RESULTS.tsv PHASE        pixtorrent's median speed over the best other client's
"""
import os
import re
import statistics
import sys
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torrent_tool import bstr, decode  # noqa: E402


def make_torrent(base, url, out):
    data = open(base, "rb").read()
    top, _ = decode(data)
    _, s, e = top[b"info"]
    info = data[s:e]
    # Keys sorted: info < url-list. No announce and no announce-list.
    body = b"d" + bstr(b"info") + info + bstr(b"url-list") + b"l" + bstr(url.encode()) + b"e" + b"e"
    with open(out, "wb") as f:
        f.write(body)


def check(url):
    req = urllib.request.Request(url, headers={"Range": "bytes=0-9"})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
        if r.status != 206 or len(body) != 10:
            sys.exit(f"{url}: expected 206 with 10 bytes, got {r.status} with {len(body)}")


def stats(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    # "Active connections: 1 \nserver accepts handled requests\n 5 5 9 \nReading: ..."
    nums = text.splitlines()[2].split()
    print(nums[0], nums[2])


def human(n):
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n / div:.4g} {unit}"
    return f"{n:.0f} B"


def max_overlap(intervals):
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


LINE = re.compile(r'^(\S+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\S+) "([^"]*)" "([^"]*)" "([^"]*)"$')


def summarise_log(path):
    reqs = []
    for line in open(path, errors="replace"):
        m = LINE.match(line.rstrip("\n"))
        if not m:
            continue
        msec, conn, _, _, status, req_len, sent, rtime, rng, uri, agent = m.groups()
        if uri == "/.nginx_status":  # the benchmark's own counter reads
            continue
        end, rtime = float(msec), float(rtime)
        size = 0
        for a, b in re.findall(r"(\d*)-(\d*)", rng):
            if a and b:
                size += int(b) - int(a) + 1
        reqs.append((end - rtime, end, int(conn), int(status), int(req_len), int(sent), size, uri, agent))
    if not reqs:
        print("no requests logged")
        return
    conns = {}
    for start, end, conn, *_ in reqs:
        a, b = conns.get(conn, (start, end))
        conns[conn] = (min(a, start), max(b, end))
    statuses = {}
    for r in reqs:
        statuses[r[3]] = statuses.get(r[3], 0) + 1
    sizes = sorted(r[6] for r in reqs if r[6])
    sent = sum(r[5] for r in reqs)
    span = max(r[1] for r in reqs) - min(r[0] for r in reqs)
    print(f"requests {len(reqs)} ({', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))}), "
          f"connections {len(conns)} (at most {max_overlap(conns.values())} at once), "
          f"requests in service at once: at most {max_overlap([(r[0], r[1]) for r in reqs])}")
    if sizes:
        print(f"range sizes: min {human(sizes[0])}, median {human(sizes[len(sizes) // 2])}, "
              f"max {human(sizes[-1])}; {len(reqs) - len(sizes)} requests without a Range")
    times = sorted(r[1] - r[0] for r in reqs)
    print(f"sent {sent / 1e6:.1f} MB over {span:.2f} s (first request to last response); nginx time per "
          f"request: median {times[len(times) // 2] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms; "
          f"request header {statistics.median(r[4] for r in reqs):.0f} B; user agent \"{reqs[0][8]}\"")
    uris = {}
    for r in reqs:
        uris[r[7]] = uris.get(r[7], 0) + 1
    print("requests per file: " + ", ".join(f"{os.path.basename(u)}: {n}" for u, n in sorted(uris.items())))


def ratio(path, phase):
    walls = {}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if f[0] == phase and f[3] == "ok":
            walls.setdefault(f[1], []).append(float(f[4]))
    med = {c: statistics.median(w) for c, w in walls.items()}
    others = {c: w for c, w in med.items() if c != "pixtorrent"}
    label = "/".join(c for c in ("aria2c", "libtorrent") if c in others) or "aria2c/libtorrent"
    if "pixtorrent" not in med or not others:
        print(f"pixtorrent vs best of {label}: n/a (no successful runs to compare)")
        return
    best = min(others, key=others.get)
    print(f"pixtorrent vs best of {label}: {others[best] / med['pixtorrent']:.2f}x (>1 = pixtorrent faster; "
          f"best other: {best}, median {others[best]:.2f} s vs pixtorrent {med['pixtorrent']:.2f} s)")


def main():
    cmd, args = sys.argv[1] if len(sys.argv) > 1 else "", sys.argv[2:]
    if cmd == "torrent" and len(args) == 3:
        make_torrent(*args)
    elif cmd == "check" and len(args) == 1:
        check(*args)
    elif cmd == "stats" and len(args) == 1:
        stats(*args)
    elif cmd == "log" and len(args) == 1:
        summarise_log(*args)
    elif cmd == "ratio" and len(args) == 2:
        ratio(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
