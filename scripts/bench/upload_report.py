#!/usr/bin/python3
"""Summarises the upload benchmark's results file (one tab-separated line per run): a table of every
leecher and seeder pair, then one line per leecher with the ratio of the medians (libtorrent-seeder
time / pixtorrent-seeder time: 1.0 or more means pixtorrent feeds that leecher at least as fast) and
each seeder's CPU seconds per GB and peak RSS. MB and GB are 10^6 and 10^9 bytes.

  upload_report.py RESULTS.tsv PAYLOAD_BYTES
Columns of RESULTS.tsv: leecher seeder run status wall_s done_s leecher_cpu_s leecher_maxrss_kb
seeder_cpu_s seeder_hwm_kb seeder_rss_kb seeder_rssfile_kb seeder_ready_s seeder_rss_ready_kb note
"""
import collections
import statistics
import sys


def fmt_table(hdr, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip() for r in (hdr, *rows))


def summarise(rs, gb):
    """Medians (and the largest peaks) of one leecher/seeder pair's successful runs; None if none."""
    ok = [r for r in rs if r[3] == "ok"]
    if not ok:
        return None
    return {
        "ok": len(ok),
        "wall": statistics.median(float(r[4]) for r in ok),
        "lcpu": statistics.median(float(r[6]) / gb for r in ok),
        "lrss": max(int(float(r[7])) for r in ok) / 1024,
        "scpu": statistics.median(float(r[8]) / gb for r in ok),
        "hwm": max(int(r[9]) for r in ok) / 1024,
        "file": max(int(r[11]) for r in ok) / 1024,
        "anon": max(int(r[10]) - int(r[11]) for r in ok) / 1024,
        "ready": statistics.median(float(r[12]) for r in ok),
    }


def main():
    path, size = sys.argv[1], int(sys.argv[2])
    gb = size / 1e9
    runs = collections.OrderedDict()
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        runs.setdefault(f[0], collections.OrderedDict()).setdefault(f[1], []).append(f)

    print(f"\n== upload: payload {size / 1e6:.1f} MB, every leecher and seeder ==")
    print("(RSS file = the payload's pages mapped by the seeder, anon = the rest; largest of the runs)")
    hdr = ("leecher", "seeder", "ok/runs", "wall s", "MB/s", "seeder CPU s/GB", "seeder peak RSS MB",
           "RSS at end: file/anon MB", "seeder ready s", "leecher CPU s/GB", "leecher peak RSS MB",
           "walls (all runs)")
    rows, stats = [], {}
    for leecher, seeders in runs.items():
        for seeder, rs in seeders.items():
            walls = " ".join(f"{float(r[4]):.2f}" if r[3] == "ok" else r[3] for r in rs)
            s = summarise(rs, gb)
            stats[(leecher, seeder)] = s
            if s is None:
                rows.append((leecher, seeder, f"0/{len(rs)}", "FAILED", "-", "-", "-", "-", "-", "-", "-",
                             walls))
                continue
            rows.append((leecher, seeder, f"{s['ok']}/{len(rs)}", f"{s['wall']:.2f}",
                         f"{size / s['wall'] / 1e6:.0f}", f"{s['scpu']:.2f}", f"{s['hwm']:.0f}",
                         f"{s['file']:.0f}/{s['anon']:.0f}", f"{s['ready']:.1f}", f"{s['lcpu']:.2f}",
                         f"{s['lrss']:.0f}", walls))
    print(fmt_table(hdr, rows))

    print("\n== per leecher: pixtorrent seeder vs libtorrent seeder (medians) ==")
    hdr = ("leecher", "from pixtorrent s", "from libtorrent s", "ratio lt/px", "px CPU s/GB",
           "lt CPU s/GB", "px peak RSS MB", "lt peak RSS MB")
    rows = []
    for leecher in runs:
        px, lt = stats.get((leecher, "pixtorrent")), stats.get((leecher, "libtorrent"))
        get = lambda s, k, spec: format(s[k], spec) if s else "FAILED"
        ratio = f"{lt['wall'] / px['wall']:.2f}" if px and lt else "n/a"
        rows.append((leecher, get(px, "wall", ".2f"), get(lt, "wall", ".2f"), ratio, get(px, "scpu", ".2f"),
                     get(lt, "scpu", ".2f"), get(px, "hwm", ".0f"), get(lt, "hwm", ".0f")))
    print(fmt_table(hdr, rows))
    print("ratio = libtorrent-seeder time / pixtorrent-seeder time: 1.00 or more means pixtorrent feeds "
          "that leecher at least as fast")


if __name__ == "__main__":
    main()
