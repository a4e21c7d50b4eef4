#!/usr/bin/python3
"""Small .torrent helper for the download benchmark: print a torrent's info-hash, or write a copy with a
different announce URL and the very same `info` bytes (so the same info-hash) and `piece layers`.

  torrent_tool.py infohash FILE     the 20-byte hash(es) it is announced under, one per line: SHA-1 of
                                    `info` (v1), its SHA-256 truncated to 20 bytes (v2-only, BEP 52), or
                                    both (hybrid)
  torrent_tool.py reannounce FILE URL OUT
"""
import hashlib
import sys


def decode(buf, i=0):
    """Decodes one bencoded value at buf[i:]; returns (value, end). Dict values are kept with their
    raw byte span as (value, start, end) so the `info` bytes can be reused verbatim."""
    c = buf[i:i + 1]
    if c == b"i":
        j = buf.index(b"e", i)
        return int(buf[i + 1:j]), j + 1
    if c == b"l":
        i += 1
        out = []
        while buf[i:i + 1] != b"e":
            v, i = decode(buf, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while buf[i:i + 1] != b"e":
            k, i = decode(buf, i)
            start = i
            v, i = decode(buf, i)
            out[k] = (v, start, i)
        return out, i + 1
    if c.isdigit():
        j = buf.index(b":", i)
        n = int(buf[i:j])
        return buf[j + 1:j + 1 + n], j + 1 + n
    raise ValueError(f"bad bencode at byte {i}")


def bstr(b):
    return str(len(b)).encode() + b":" + b


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    data = open(path, "rb").read()
    top, _ = decode(data)
    _, s, e = top[b"info"]
    info = data[s:e]
    if cmd == "infohash":
        fields = top[b"info"][0]
        if b"pieces" in fields:
            print(hashlib.sha1(info).hexdigest())
        if b"file tree" in fields:
            print(hashlib.sha256(info).hexdigest()[:40])
    elif cmd == "reannounce":
        url, out = sys.argv[3].encode(), sys.argv[4]
        # Only announce + info (+ piece layers, v2), keys sorted: no announce-list, so no other
        # tracker is ever asked.
        body = b"d" + bstr(b"announce") + bstr(url) + bstr(b"info") + info
        if b"piece layers" in top:
            _, ls, le = top[b"piece layers"]
            body += bstr(b"piece layers") + data[ls:le]
        body += b"e"
        with open(out, "wb") as f:
            f.write(body)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
