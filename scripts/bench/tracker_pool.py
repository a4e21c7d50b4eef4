#!/usr/bin/env python3
"""Makes the tracker benchmark's info-hash pool: N hashes (SHA-1 of "bench-<i>"), written as a
whitelist (hex, one per line) and as a Lua table of percent-escaped hashes for wrk.

  tracker_pool.py N WHITELIST LUA
"""
import hashlib
import sys


def main():
    n, wl, lua = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    hashes = [hashlib.sha1(b"bench-%d" % i).digest() for i in range(n)]
    with open(wl, "w") as f:
        f.writelines(h.hex() + "\n" for h in hashes)
    with open(lua, "w") as f:
        f.write("pool = {\n")
        f.writelines('"%s",\n' % "".join("%%%02X" % b for b in h) for h in hashes)
        f.write("}\n")


if __name__ == "__main__":
    main()
