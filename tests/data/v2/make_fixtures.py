#!/usr/bin/python3
"""Makes the BEP 52 test torrents in this folder with python3-libtorrent (2.0) and records what
libtorrent says about them in expected.json. Run from anywhere: /usr/bin/python3 make_fixtures.py

File contents follow a pattern the Rust tests regenerate (`content(len, seed)`, here and in
src/metainfo/v2/tests.rs), so no payload is committed. The torrents are committed,
so `cargo test --lib` needs neither python nor libtorrent."""

import json
import os
import shutil
import tempfile

import libtorrent as lt

HERE = os.path.dirname(os.path.abspath(__file__))


def content(length, seed):
    """byte i = (i * 31 + seed * 17 + (i >> 14)) mod 251: differs per block and per file."""
    return bytes(((i * 31 + seed * 17 + (i >> 14)) % 251) for i in range(length))


# name -> (flags, piece length, files [(relative path, length, seed)], single-file?)
FIXTURES = {
    # One file of 100,000 bytes in 32 KiB pieces: 4 pieces, the last 1,696 bytes.
    "v2-single": (lt.create_torrent.v2_only, 32768, [("single.bin", 100000, 1)], True),
    # A file larger than a piece, one smaller, an empty one, one of exactly one piece, one of
    # exactly one block, a deeper one of 7 pieces.
    "v2-multi": (lt.create_torrent.v2_only, 32768, [
        ("multi/a.bin", 70000, 2),
        ("multi/b.txt", 5, 3),
        ("multi/empty", 0, 4),
        ("multi/sub/c.bin", 32768, 5),
        ("multi/sub/d.bin", 200000, 6),
        ("multi/z-block.bin", 16384, 7),
    ], False),
    # 16 KiB pieces: the piece layer is the leaf layer.
    "v2-16k": (lt.create_torrent.v2_only, 16384, [("b16/x.bin", 50000, 8), ("b16/y.bin", 16385, 9)], False),
    # Hybrids of the same shapes: v1 `pieces` and BEP 47 pad files too.
    "hybrid-single": (0, 32768, [("hsingle.bin", 100000, 1)], True),
    "hybrid-multi": (0, 32768, [
        ("hmulti/a.bin", 70000, 2),
        ("hmulti/b.txt", 5, 3),
        ("hmulti/empty", 0, 4),
        ("hmulti/sub/c.bin", 32768, 5),
        ("hmulti/sub/d.bin", 200000, 6),
    ], False),
}


def make(name, flags, piece_length, files, single):
    tmp = tempfile.mkdtemp()
    try:
        for path, length, seed in files:
            full = os.path.join(tmp, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(content(length, seed))
        fs = lt.file_storage()
        root = os.path.join(tmp, files[0][0].split("/")[0]) if not single else os.path.join(tmp, files[0][0])
        lt.add_files(fs, root)
        t = lt.create_torrent(fs, piece_length, flags=flags)
        t.set_creator("make_fixtures.py")
        lt.set_piece_hashes(t, tmp)
        entry = t.generate()
        entry.pop(b"creation date", None)
        data = lt.bencode(entry)
    finally:
        shutil.rmtree(tmp)
    with open(os.path.join(HERE, name + ".torrent"), "wb") as f:
        f.write(data)
    return data


def describe(data):
    ti = lt.torrent_info(lt.bdecode(data))
    ih = ti.info_hashes()
    fs = ti.files()
    out = {
        "v1": str(ih.v1) if ih.has_v1() else None,
        "v2": str(ih.v2) if ih.has_v2() else None,
        "piece_length": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "total_size": fs.total_size(),
        "files": [],
    }
    for i in range(fs.num_files()):
        root = fs.root(i)
        out["files"].append({
            "path": fs.file_path(i),
            "size": fs.file_size(i),
            "offset": fs.file_offset(i),
            "pad": bool(fs.file_flags(i) & lt.file_storage.flag_pad_file),
            "root": None if root.is_all_zeros() else root.to_bytes().hex(),
        })
    return out


def main():
    expected = {}
    for name, (flags, pl, files, single) in FIXTURES.items():
        data = make(name, flags, pl, files, single)
        d = describe(data)
        d["contents"] = [[p, n, s] for p, n, s in files]
        expected[name] = d
    example = "/work/shared/example-torrents/bittorrent-v2-hybrid-test.torrent"
    if os.path.exists(example):
        expected["bittorrent-v2-hybrid-test"] = describe(open(example, "rb").read())
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
