#!/usr/bin/python3
"""Summarises the many-torrents benchmark (scripts/bench-many.sh): one table row per client and the ratios
pixtorrent / libtorrent (below 1.00 is better for pixtorrent, except for the torrents column).

  many_report.py RESULTS.tsv
Columns of RESULTS.tsv (one line per client): client torrents startup_s idle_cpu_s window_s rss_kb hwm_kb
fds threads mapped_files status
"""
import sys

COLS = [
    # (header, key, format)
    ("torrents", "torrents", "{:.0f}"),
    ("startup s", "startup", "{:.2f}"),
    ("idle CPU s", "cpu", "{:.2f}"),
    ("CPU %", "cpu_pct", "{:.2f}"),
    ("RSS MB", "rss", "{:.1f}"),
    ("peak RSS MB", "hwm", "{:.1f}"),
    ("fds", "fds", "{:.0f}"),
    ("threads", "threads", "{:.0f}"),
    ("mapped files", "maps", "{:.0f}"),
]


def main():
    rows = {}
    order = []
    for line in open(sys.argv[1]):
        f = line.rstrip("\n").split("\t")
        if len(f) < 11:
            continue
        client = f[0]
        r = {
            "torrents": float(f[1]),
            "startup": float(f[2]),
            "cpu": float(f[3]),
            "cpu_pct": 100 * float(f[3]) / float(f[4]) if float(f[4]) > 0 else 0.0,
            "rss": float(f[5]) * 1024 / 1e6,
            "hwm": float(f[6]) * 1024 / 1e6,
            "fds": float(f[7]),
            "threads": float(f[8]),
            "maps": float(f[9]),
            "status": f[10],
        }
        rows[client] = r
        order.append(client)
    hdr = ["client"] + [c[0] for c in COLS] + ["status"]
    table = [hdr]
    for client in order:
        r = rows[client]
        table.append([client] + [fmt.format(r[key]) for _, key, fmt in COLS] + [r["status"]])
    if "pixtorrent" in rows and "libtorrent" in rows:
        p, l = rows["pixtorrent"], rows["libtorrent"]
        ratio = ["pix/lt"]
        for _, key, _ in COLS:
            ratio.append(f"{p[key] / l[key]:.2f}" if l[key] > 0 else ("-" if p[key] == 0 else "inf"))
        table.append(ratio + [""])
    widths = [max(len(row[i]) for row in table) for i in range(len(hdr))]
    for k, row in enumerate(table):
        print("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
