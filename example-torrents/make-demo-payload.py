#!/usr/bin/env python3
"""Writes pixtorrent's demo payload into DIR/pixtorrent-demo: the same bytes on every machine, so the
committed example-torrents/pixtorrent-demo.torrent matches what it makes.

Shaped like an Internet Archive item (one big file, small files of odd sizes, one in a subfolder, one
empty file). Each file's bytes are SHAKE-256 (FIPS 202) of "pixtorrent-demo/" + its path, which any
language can reproduce; nothing depends on a random generator's version.

  example-torrents/make-demo-payload.py DIR
"""
import hashlib
import os
import sys

FILES = [
    ("pixtorrent-demo.mp4", 40 * (1 << 20) + 12345),
    ("pixtorrent-demo_meta.xml", 1431),
    ("pixtorrent-demo_files.xml", 5821),
    ("__ia_thumb.jpg", 7919),
    ("pixtorrent-demo.thumbs/pixtorrent-demo_000001.jpg", 23457),
    ("pixtorrent-demo_reviews.xml", 0),
]


def content(rel, size):
    return hashlib.shake_256(("pixtorrent-demo/" + rel).encode()).digest(size) if size else b""


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    item = os.path.join(sys.argv[1], "pixtorrent-demo")
    for rel, size in FILES:
        path = os.path.join(item, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = content(rel, size)
        try:
            with open(path, "rb") as f:
                if f.read() == data:
                    continue
        except FileNotFoundError:
            pass
        with open(path, "wb") as f:
            f.write(data)
    print(item)


if __name__ == "__main__":
    main()
