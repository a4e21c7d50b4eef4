#!/usr/bin/python3
# The v1 info-hash python3-libtorrent computes for ROOT (a file or a directory) with the given piece
# size and file order: the reference `pixtorrent create` is checked against.
#   lt_info_hash.py ROOT PIECE_SIZE [REL_PATH...]   (no REL_PATH: ROOT is a single file)
import sys, libtorrent as lt, hashlib, os
root, piece, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
fs = lt.file_storage()
name = os.path.basename(root)
if files:
    for rel in files:
        fs.add_file(os.path.join(name, rel), os.path.getsize(os.path.join(root, rel)))
else:
    fs.add_file(name, os.path.getsize(root))
ct = lt.create_torrent(fs, piece, flags=lt.create_torrent.v1_only)
lt.set_piece_hashes(ct, os.path.dirname(root))
e = ct.generate()
info = lt.bencode(e[b"info"])
print(hashlib.sha1(info).hexdigest())
