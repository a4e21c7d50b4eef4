#!/usr/bin/python3
"""Summarises the download benchmark's results file (one tab-separated line per run) as a table per
phase: median wall time, MB/s, CPU seconds per GB, peak RSS, and pixtorrent's speed over the best other
client's. MB and GB are 10^6 and 10^9 bytes.

  report.py RESULTS.tsv PAYLOAD_BYTES
Columns of RESULTS.tsv: phase client run status wall_s user_s sys_s maxrss_kb seeders_cpu_s relays_cpu_s note
"""
import collections
import statistics
import sys


def main():
    path, size = sys.argv[1], int(sys.argv[2])
    gb = size / 1e9
    runs = collections.OrderedDict()
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        phase, client = f[0], f[1]
        runs.setdefault(phase, collections.OrderedDict()).setdefault(client, []).append(f)
    for phase, clients in runs.items():
        print(f"\n== {phase}: payload {size / 1e6:.1f} MB ==")
        hdr = ("client", "ok/runs", "wall s", "MB/s", "CPU s/GB", "peak RSS MB", "seeders CPU s/GB",
               "relays CPU s/GB", "walls (all runs)")
        rows, speed = [], {}
        for client, rs in clients.items():
            ok = [r for r in rs if r[3] == "ok"]
            walls = " ".join(f"{float(r[4]):.2f}" if r[3] == "ok" else r[3] for r in rs)
            if not ok:
                rows.append((client, f"0/{len(rs)}", "FAILED", "-", "-", "-", "-", "-", walls))
                continue
            wall = statistics.median(float(r[4]) for r in ok)
            cpu = statistics.median((float(r[5]) + float(r[6])) / gb for r in ok)
            rss = max(int(r[7]) for r in ok) / 1024
            seed = statistics.median(float(r[8]) / gb for r in ok)
            relay = statistics.median(float(r[9]) / gb for r in ok)
            speed[client] = size / wall / 1e6
            rows.append((client, f"{len(ok)}/{len(rs)}", f"{wall:.2f}", f"{speed[client]:.0f}",
                         f"{cpu:.2f}", f"{rss:.0f}", f"{seed:.2f}",
                         f"{relay:.2f}" if relay else "-", walls))
        widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
        for r in (hdr, *rows):
            print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())
        others = {c: s for c, s in speed.items() if c != "pixtorrent"}
        if "pixtorrent" in speed and others:
            best = max(others, key=others.get)
            print(f"pixtorrent_speed / best_other_speed ({best}) = "
                  f"{speed['pixtorrent'] / others[best]:.2f}")
        elif "pixtorrent" in clients:
            print("pixtorrent_speed / best_other_speed = n/a (no successful run to compare)")


if __name__ == "__main__":
    main()
