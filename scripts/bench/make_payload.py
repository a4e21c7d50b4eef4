#!/usr/bin/python3
"""Writes a payload shaped like an Internet Archive item into DIR/NAME: one big file of SIZE_MB MiB
(+ an odd tail so the last piece is partial), a few small files of odd sizes (one in a subfolder, as
IA's thumbnails are) and one zero-length file. Content is random (incompressible).

  make_payload.py DIR NAME SIZE_MB
"""
import os
import sys


def write_random(path, size, chunk=8 << 20):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n


def main():
    root, name, size_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
    item = os.path.join(root, name)
    files = [
        (f"{name}.mp4", size_mb * (1 << 20) + 4321),
        (f"{name}_meta.xml", 1337),
        (f"{name}_files.xml", 5821),
        (f"{name}_meta.sqlite", 20483),
        ("__ia_thumb.jpg", 7919),
        (f"{name}.thumbs/{name}_000001.jpg", 23457),
        (f"{name}_reviews.xml", 0),
    ]
    for rel, size in files:
        write_random(os.path.join(item, rel), size)
    print(sum(s for _, s in files))


if __name__ == "__main__":
    main()
