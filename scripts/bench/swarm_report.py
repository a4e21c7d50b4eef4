#!/usr/bin/python3
"""Reports for scripts/bench-swarm.sh. MB = 10^6 bytes.

  swarm_report.py sources KINDS.tsv CLIENT LOG
      Where a leecher's bytes came from, by kind of peer (KINDS.tsv: `IP<TAB>KIND` per peer of the
      swarm). pixtorrent's LOG has its summary's `peer IP:PORT (CLIENT): N bytes` lines; the libtorrent
      leecher's (lt_leech.py) has `PEER IP:PORT blocks=N` lines, counted as 16 KiB each. Prints two
      lines: `seeder=BYTES/PEERS,leecher=...,aria2c=...,transmission=...,other=...` (peers: those
      that sent anything) and the client names pixtorrent saw per kind (`-` for libtorrent).
  swarm_report.py finish LOG SEEDER_IP
      From swarm_peers.py --leech's LOG: `DONE-COUNT MIN MEDIAN MAX SEEDER_BYTES` (finish times in s
      since START; bytes the leechers got from SEEDER_IP, 16 KiB blocks).
  swarm_report.py table SWARM.tsv SEED.tsv PAYLOAD_BYTES
      The tables, medians over each client's successful runs. SWARM.tsv: client run status wall_s
      user_s sys_s maxrss_kb swarm_cpu_s sources note; SEED.tsv: seeder run status done leechers
      last_s min_s median_s max_s seeder_bytes seeder_cpu_s leechers_cpu_s note.
"""
import re
import statistics
import sys

KINDS = ["seeder", "leecher", "aria2c", "transmission", "other"]
BLOCK = 16384


def sources(kinds_path, client, log):
    kind_of = {}
    for line in open(kinds_path):
        ip, kind = line.split()
        kind_of[ip] = kind
    got = {k: [0, 0] for k in KINDS}
    names = {k: set() for k in KINDS}
    for line in open(log, errors="replace"):
        if client == "pixtorrent":
            m = re.match(r"^\s*peer (\d+\.\d+\.\d+\.\d+):\d+ \((.*)\): (\d+) bytes$", line)
            if not m:
                continue
            ip, name, n = m.group(1), m.group(2), int(m.group(3))
        else:
            m = re.match(r"^PEER (\d+\.\d+\.\d+\.\d+):\d+ blocks=(\d+)$", line)
            if not m:
                continue
            ip, name, n = m.group(1), None, int(m.group(2)) * BLOCK
        kind = kind_of.get(ip, "other")
        if n:
            got[kind][0] += n
            got[kind][1] += 1
        if name:
            names[kind].add(name)
    print(",".join(f"{k}={b}/{p}" for k, (b, p) in got.items()))
    seen = "; ".join(f"{k}: {', '.join(sorted(v))}" for k, v in names.items() if v)
    print(seen or "-")


def finish(log, seeder_ip):
    times, from_seeder = [], 0
    for line in open(log, errors="replace"):
        m = re.match(r"^DONE \S+ t=([\d.]+)$", line)
        if m:
            times.append(float(m.group(1)))
        m = re.match(r"^PEER \S+ (\S+):\d+ blocks=(\d+)$", line)
        if m and m.group(1) == seeder_ip:
            from_seeder += int(m.group(2)) * BLOCK
    if times:
        print(len(times), f"{min(times):.2f}", f"{statistics.median(times):.2f}", f"{max(times):.2f}", from_seeder)
    else:
        print(0, 0, 0, 0, from_seeder)


def render(hdr, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
    for r in (hdr, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


def ratio(a, b, fmt="{:.2f}"):
    try:
        return fmt.format(float(a) / float(b))
    except (ValueError, ZeroDivisionError):
        return "n/a"


def med(xs):
    return statistics.median(xs) if xs else 0.0


def table(swarm_path, seed_path, size):
    mb = lambda b: f"{b / 1e6:.1f}"  # noqa: E731
    swarm = [line.rstrip("\n").split("\t") for line in open(swarm_path) if line.strip()]
    seed = [line.rstrip("\n").split("\t") for line in open(seed_path) if line.strip()]
    if swarm:
        print(f"\n== swarm: a leecher joins the swarm; payload {size / 1e6:.1f} MB; medians over the successful runs ==")
        hdr = ("client", "ok/runs", "wall s", "MB/s", "CPU s", "CPU s/GB", "peak RSS MB", "swarm CPU s",
               "MB from: lt seeders", "lt leechers", "aria2c", "Transmission", "other", "walls (all runs)")
        runs = {}
        for f in swarm:
            runs.setdefault(f[0], []).append(f)
        rows, by = [], {}
        for client, rs in runs.items():
            walls = " ".join(f"{float(r[3]):.2f}" if r[2] == "ok" else r[2] for r in rs)
            ok = [r for r in rs if r[2] == "ok"]
            if not ok:
                rows.append((client, f"0/{len(rs)}", "FAILED", *["-"] * 10, walls))
                continue
            got = []
            for r in ok:
                g = {}
                for part in r[8].split(","):
                    k, v = part.split("=")
                    b, n = v.split("/")
                    g[k] = (int(b), int(n))
                got.append(g)
            wall = med([float(r[3]) for r in ok])
            cpu = med([float(r[4]) + float(r[5]) for r in ok])
            rss = max(int(r[6]) for r in ok) / 1024
            swarm_cpu = med([float(r[7]) for r in ok])
            per_kind = {k: (med([g[k][0] for g in got]), med([g[k][1] for g in got])) for k in KINDS}
            share = med([sum(g[k][0] for k in KINDS if k != "seeder") / max(1, sum(g[k][0] for k in KINDS)) for g in got])
            by[client] = (wall, cpu, share)
            rows.append((client, f"{len(ok)}/{len(rs)}", f"{wall:.2f}", f"{size / wall / 1e6:.1f}", f"{cpu:.2f}",
                         f"{cpu / (size / 1e9):.2f}", f"{rss:.0f}", f"{swarm_cpu:.2f}",
                         *(f"{mb(per_kind[k][0])} ({per_kind[k][1]:g})" for k in KINDS), walls))
        render(hdr, rows)
        p, l = by.get("pixtorrent"), by.get("libtorrent")
        if p and l:
            print(f"pixtorrent/libtorrent: wall {ratio(p[0], l[0])}, CPU {ratio(p[1], l[1])}; share of bytes from "
                  f"peers other than seeders: pixtorrent {p[2]:.0%}, libtorrent {l[2]:.0%}")
        else:
            print("pixtorrent/libtorrent: n/a (both need a successful run)")
        print("wall: from the leecher's start to its exit with every file verified, plus a `sync` right after;")
        print("MB/s: payload / wall; CPU: the leecher's user+sys (/usr/bin/time), per GB of payload too; swarm CPU:")
        print("every swarm process's user+sys meanwhile; MB from KIND (PEERS): payload bytes the leecher got from")
        print("that kind of peer and how many of them sent any (libtorrent: 16 KiB blocks x 16384).")
    if seed:
        print(f"\n== seeding: one seeder alone, leechers started at once; payload {size / 1e6:.1f} MB; medians over the "
              "successful runs ==")
        hdr = ("seeder", "ok/runs", "done", "last done s", "swarm MB/s", "seeder up MB", "seeder MB/s",
               "seeder CPU s", "CPU s/GB up", "finish min s", "median s", "max s", "max/min", "leechers CPU s",
               "last done (all runs)")
        runs = {}
        for f in seed:
            runs.setdefault(f[0], []).append(f)
        rows, by = [], {}
        for seeder, rs in runs.items():
            lasts = " ".join(f"{float(r[5]):.2f}" if r[2] == "ok" else r[2] for r in rs)
            ok = [r for r in rs if r[2] == "ok"]
            if not ok:
                rows.append((seeder, f"0/{len(rs)}", "FAILED", *["-"] * 11, lasts))
                continue
            last = med([float(r[5]) for r in ok])
            tmin, tmed, tmax = (med([float(r[i]) for r in ok]) for i in (6, 7, 8))
            sbytes = med([int(r[9]) for r in ok])
            scpu = med([float(r[10]) for r in ok])
            lcpu = med([float(r[11]) for r in ok])
            spread = med([float(r[8]) / float(r[6]) for r in ok if float(r[6])])
            n = int(ok[0][4])
            up = med([int(r[9]) / float(r[5]) / 1e6 for r in ok if float(r[5])])
            by[seeder] = (last, up, spread)
            rows.append((seeder, f"{len(ok)}/{len(rs)}", f"{n}/{n}", f"{last:.2f}", f"{n * size / last / 1e6:.1f}",
                         mb(sbytes), f"{up:.1f}", f"{scpu:.2f}", f"{scpu / (sbytes / 1e9):.2f}" if sbytes else "-",
                         f"{tmin:.2f}", f"{tmed:.2f}", f"{tmax:.2f}", f"{spread:.2f}", f"{lcpu:.2f}", lasts))
        render(hdr, rows)
        p, l = by.get("pixtorrent"), by.get("libtorrent")
        if p and l:
            print(f"pixtorrent/libtorrent: last done {ratio(p[0], l[0])}, seeder upload rate {ratio(p[1], l[1])}, "
                  f"finish spread (max/min) {ratio(p[2], l[2])}")
        else:
            print("pixtorrent/libtorrent: n/a (both need a successful run)")
        print("last done: from the moment every leecher's torrent is added to the last leecher's last verified")
        print("piece (a run counts as ok only if every leecher finished); swarm MB/s: leechers x payload / last")
        print("done; seeder up: what the leechers got from the seeder (16 KiB blocks; the rest they traded among")
        print("themselves), seeder MB/s: that / last done; seeder CPU: its user+sys over the run; finish min/")
        print("median/max: the leechers' finish times, max/min their spread (1.00: all at once; the fairness")
        print("of the seeder's choker).")


def main():
    cmd = sys.argv[1]
    if cmd == "sources":
        sources(*sys.argv[2:5])
    elif cmd == "finish":
        finish(*sys.argv[2:4])
    elif cmd == "table":
        table(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
