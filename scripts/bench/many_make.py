#!/usr/bin/python3
"""Payload and torrents of the many-torrents benchmark (scripts/bench-many.sh).

  many_make.py data DIR NAME...           makes DIR/NAME for each NAME: 2 or 3 files of random bytes,
                                          1 to 4 MiB in all (sizes drawn from the name, so the same on
                                          every machine; contents from os.urandom); an existing
                                          DIR/NAME is replaced
  many_make.py reannounce URL OUT SRC...  writes OUT/<basename of SRC> for each .torrent SRC with `announce`
                                          URL and the very same `info` bytes (so the same info-hash)
  many_make.py infohash SRC...            one info-hash (hex) per line
"""
import hashlib
import os
import random
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torrent_tool import bstr, decode  # noqa: E402 (the bencode reader the other benchmarks use)

MIB = 1 << 20


def make_item(base, name):
    rng = random.Random(name)
    total = rng.randint(1 * MIB, 4 * MIB)
    nfiles = rng.choice((2, 3))
    # Cut points inside the total, each file at least 16 KiB.
    cuts = sorted(rng.sample(range(16 << 10, total - (16 << 10)), nfiles - 1))
    sizes = [b - a for a, b in zip([0] + cuts, cuts + [total])]
    path = os.path.join(base, name)
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "extra"))
    for k, size in enumerate(sizes):
        # One file in a subdirectory: multi-file torrents with a path of two components too.
        rel = f"extra/part{k}.bin" if k == nfiles - 1 else f"part{k}.bin"
        with open(os.path.join(tmp, rel), "wb") as f:
            f.write(os.urandom(size))
    shutil.rmtree(path, ignore_errors=True)
    os.rename(tmp, path)


def info_bytes(path):
    data = open(path, "rb").read()
    top, _ = decode(data)
    _, s, e = top[b"info"]
    return data[s:e]


def main():
    cmd = sys.argv[1]
    if cmd == "data":
        base = sys.argv[2]
        os.makedirs(base, exist_ok=True)
        for name in sys.argv[3:]:
            make_item(base, name)
    elif cmd == "reannounce":
        url, out = sys.argv[2].encode(), sys.argv[3]
        os.makedirs(out, exist_ok=True)
        for src in sys.argv[4:]:
            # Only announce + info (keys sorted): no announce-list, so no other tracker is ever asked.
            body = b"d" + bstr(b"announce") + bstr(url) + bstr(b"info") + info_bytes(src) + b"e"
            with open(os.path.join(out, os.path.basename(src)), "wb") as f:
                f.write(body)
    elif cmd == "infohash":
        for src in sys.argv[2:]:
            print(hashlib.sha1(info_bytes(src)).hexdigest())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
