#!/usr/bin/python3
"""One table over every phase of the download benchmark's results: per client the median wall time, MB/s,
its speed over the libtorrent leecher's in the same phase (above 1.00: faster than libtorrent), and its
CPU (user+sys) seconds per GB. MB and GB are 10^6 and 10^9 bytes; medians over successful runs.

  vs_libtorrent.py RESULTS.tsv PAYLOAD_BYTES
Columns of RESULTS.tsv: phase client run status wall_s user_s sys_s maxrss_kb seeders_cpu_s relays_cpu_s note
"""
import collections
import statistics
import sys


def main():
    path, size = sys.argv[1], int(sys.argv[2])
    gb = size / 1e9
    runs = collections.OrderedDict()
    with open(path) as f:
        for line in f:
            r = line.rstrip("\n").split("\t")
            runs.setdefault(r[0], collections.OrderedDict()).setdefault(r[1], []).append(r)
    hdr = ("phase", "client", "ok/runs", "wall s", "MB/s", "speed / libtorrent's", "CPU s/GB")
    rows = []
    for phase, clients in runs.items():
        stats = {}
        for client, rs in clients.items():
            ok = [r for r in rs if r[3] == "ok"]
            if ok:
                wall = statistics.median(float(r[4]) for r in ok)
                cpu = statistics.median((float(r[5]) + float(r[6])) / gb for r in ok)
                stats[client] = (len(ok), len(rs), wall, size / wall / 1e6, cpu)
            else:
                stats[client] = (0, len(rs), None, None, None)
        base = stats.get("libtorrent", (0, 0, None, None, None))[3]
        for client, (nok, n, wall, mbs, cpu) in stats.items():
            if wall is None:
                rows.append((phase, client, f"0/{n}", "FAILED", "-", "-", "-"))
                continue
            ratio = f"{mbs / base:.2f}" if base else "n/a"
            rows.append((phase, client, f"{nok}/{n}", f"{wall:.2f}", f"{mbs:.1f}", ratio, f"{cpu:.2f}"))
    print("== all phases: speed relative to the libtorrent leecher (client MB/s / libtorrent MB/s) ==")
    widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
    for r in (hdr, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


if __name__ == "__main__":
    main()
