#!/usr/bin/python3
"""Summarises the magnet benchmark's results file (one tab-separated line per run): per client the
median time to metadata, median time to complete, the data phase's MB/s, median CPU, the largest peak
RSS; then pixtorrent's numbers over each other client's. MB is 10^6 bytes.

  magnet_report.py RESULTS.tsv PAYLOAD_BYTES
Columns of RESULTS.tsv: client run status metadata_s complete_s user_s sys_s maxrss_kb note
"""
import collections
import statistics
import sys


def ratio(a, b):
    """a / b, with a third decimal below 0.1 (a few ms of metadata against seconds)."""
    if b <= 0:
        return "n/a"
    r = a / b
    return f"{r:.3f}" if r < 0.1 else f"{r:.2f}"


def main():
    path, size = sys.argv[1], int(sys.argv[2])
    runs = collections.OrderedDict()
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        runs.setdefault(f[0], []).append(f)
    print(f"\n== magnet link to complete download: payload {size / 1e6:.1f} MB ==")
    hdr = ("client", "ok/runs", "metadata s", "complete s", "data MB/s", "CPU s", "peak RSS MB",
           "metadata / complete s (all runs)")
    rows, med = [], {}
    for client, rs in runs.items():
        ok = [r for r in rs if r[2] == "ok"]
        alls = " ".join(f"{float(r[3]):.3f}/{float(r[4]):.2f}" if r[2] == "ok" else r[2] for r in rs)
        if not ok:
            rows.append((client, f"0/{len(rs)}", "FAILED", "-", "-", "-", "-", alls))
            continue
        meta = statistics.median(float(r[3]) for r in ok)
        done = statistics.median(float(r[4]) for r in ok)
        # The data phase: from the metadata to the files on disk.
        rate = statistics.median(size / max(float(r[4]) - float(r[3]), 1e-3) / 1e6 for r in ok)
        cpu = statistics.median(float(r[5]) + float(r[6]) for r in ok)
        rss = max(int(r[7]) for r in ok) / 1024
        med[client] = {"metadata": meta, "complete": done, "rss": rss}
        rows.append((client, f"{len(ok)}/{len(rs)}", f"{meta:.3f}", f"{done:.2f}", f"{rate:.0f}",
                     f"{cpu:.2f}", f"{rss:.0f}", alls))
    widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
    for r in (hdr, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())
    if "pixtorrent" not in runs:
        return
    print("\nratios pixtorrent / other client (medians; below 1.00 is better for pixtorrent in every column:")
    print("less time to metadata, less time to complete, less peak RSS):")
    hdr = ("pixtorrent / ...", "metadata time", "complete time", "peak RSS")
    rows = []
    for other in runs:
        if other == "pixtorrent":
            continue
        if "pixtorrent" not in med or other not in med:
            rows.append((other, "n/a", "n/a", "n/a"))
            continue
        p, o = med["pixtorrent"], med[other]
        rows.append((other, *(ratio(p[k], o[k]) for k in ("metadata", "complete", "rss"))))
    widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
    for r in (hdr, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


if __name__ == "__main__":
    main()
