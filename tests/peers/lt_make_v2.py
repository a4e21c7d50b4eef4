#!/usr/bin/python3
"""Makes a v2-only or hybrid torrent of a file or directory with python3-libtorrent (2.0), for
tests/v2_interop.rs.

  lt_make_v2.py ROOT PIECE_SIZE v2|hybrid OUT.torrent [TRACKER_URL]

lt.create_torrent with flags v2_only (v2) or 0 (hybrid, libtorrent 2.0's default), hashed from ROOT's
parent. Prints one JSON object: {"v1": hex or null, "v2": hex (64 digits), "num_pieces": N,
"pads": number of pad files libtorrent lists}."""

import json
import os
import sys

import libtorrent as lt


def main():
    root, piece, kind, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    tracker = sys.argv[5] if len(sys.argv) > 5 else None
    flags = {"v2": lt.create_torrent.v2_only, "hybrid": 0}[kind]
    fs = lt.file_storage()
    lt.add_files(fs, root)
    ct = lt.create_torrent(fs, piece, flags=flags)
    if tracker:
        ct.add_tracker(tracker)
    lt.set_piece_hashes(ct, os.path.dirname(root))
    data = lt.bencode(ct.generate())
    with open(out, "wb") as f:
        f.write(data)
    ti = lt.torrent_info(lt.bdecode(data))
    ih = ti.info_hashes()
    files = ti.files()
    pads = sum(
        1 for i in range(files.num_files()) if files.file_flags(i) & lt.file_storage.flag_pad_file
    )
    print(json.dumps({
        "v1": str(ih.v1) if ih.has_v1() else None,
        "v2": str(ih.v2),
        "num_pieces": ti.num_pieces(),
        "pads": pads,
    }))


if __name__ == "__main__":
    main()
