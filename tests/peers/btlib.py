"""What the stdlib-only test peers share: bencoding, exact reads, one-line output, and stopping at
the end of stdin (imported from the scripts' own directory)."""

import sys
import threading

STOP = threading.Event()


def say(line):
    print(line, flush=True)


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, dict):
        return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(v)


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def watch_stdin():
    """Sets STOP at the end of stdin (the test closes it to stop the script)."""
    try:
        for _ in sys.stdin:
            pass
    except (OSError, ValueError):
        pass
    STOP.set()
