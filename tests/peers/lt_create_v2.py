#!/usr/bin/python3
"""What python3-libtorrent (2.0) makes and thinks of a v2 or hybrid torrent, for tests/create_v2.rs.

  lt_create_v2.py ROOT PIECE_SIZE v2|hybrid OURS.torrent THEIRS.torrent [SAVE_PATH]

Makes a torrent of ROOT (a file or a directory) with lt.create_torrent (flags v2_only, or 0: hybrid,
libtorrent 2.0's default) and the given piece size, without a creation date, and writes it to
THEIRS.torrent. Then loads OURS.torrent (pixtorrent's) and checks the files under SAVE_PATH
(default: ROOT's parent) against it in a session with no network: every piece must pass libtorrent's hash check (v2 Merkle
trees, and for a hybrid v1 SHA-1 too). Prints one JSON object:
  {"theirs": {...}, "ours": {...}, "check": {"pieces": N, "have": N, "error": null or why}}
where each torrent's facts are v1/v2 info-hashes (hex, null when absent), piece count and files
(path, size, pad)."""

import json
import os
import sys
import time

import libtorrent as lt


def facts(ti):
    ih = ti.info_hashes()
    fs = ti.files()
    return {
        "v1": str(ih.v1) if ih.has_v1() else None,
        "v2": str(ih.v2) if ih.has_v2() else None,
        "num_pieces": ti.num_pieces(),
        "files": [
            [fs.file_path(i), fs.file_size(i), bool(fs.file_flags(i) & lt.file_storage.flag_pad_file)]
            for i in range(fs.num_files())
        ],
    }


def make(root, piece, flags, out):
    fs = lt.file_storage()
    lt.add_files(fs, root)
    ct = lt.create_torrent(fs, piece, flags=flags)
    lt.set_piece_hashes(ct, os.path.dirname(root))
    entry = ct.generate()
    entry.pop(b"creation date", None)
    data = lt.bencode(entry)
    with open(out, "wb") as f:
        f.write(data)
    return lt.torrent_info(lt.bdecode(data))


def check(ti, save_path):
    """Adds `ti` over the data in save_path and waits for libtorrent's check to end."""
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
    })
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = save_path
    atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    h = ses.add_torrent(atp)
    error = None
    deadline = time.time() + 60
    checked = False
    while time.time() < deadline and not checked:
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            if isinstance(a, lt.torrent_error_alert):
                error = a.message()
            elif isinstance(a, lt.torrent_checked_alert):
                checked = True
    s = h.status()
    return {"pieces": ti.num_pieces(), "have": s.num_pieces,
            "error": error or (None if checked else "the check did not end in 60 s")}


def main():
    root, piece, kind, ours, theirs = sys.argv[1:6]
    save_path = sys.argv[6] if len(sys.argv) > 6 else os.path.dirname(os.path.abspath(root))
    flags = lt.create_torrent.v2_only if kind == "v2" else 0
    made = make(os.path.abspath(root), int(piece), flags, theirs)
    ti = lt.torrent_info(ours)
    out = {
        "theirs": facts(made),
        "ours": facts(ti),
        "check": check(ti, save_path),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
