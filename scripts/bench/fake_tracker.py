#!/usr/bin/python3
"""A minimal HTTP tracker that answers every announce with the same fixed compact peer list (BEP 23),
whatever the info-hash: the benchmark uses it to hand leechers only the delay relays' addresses.

  fake_tracker.py --listen 127.0.0.1:PORT --peer 127.0.0.1:R1 --peer 127.0.0.1:R2
Prints `READY port=N` once listening; logs each announce to stderr.
"""
import argparse
import http.server
import socket
import socketserver
import struct
import sys


def compact(peers):
    out = b""
    for p in peers:
        ip, port = p.rsplit(":", 1)
        out += socket.inet_aton(ip) + struct.pack(">H", int(port))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--peer", action="append", default=[])
    args = ap.parse_args()
    peers = compact(args.peer)
    body = (b"d8:completei%de10:incompletei0e8:intervali1800e12:min intervali1800e5:peers%d:"
            % (len(args.peer), len(peers))) + peers + b"e"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *a):
            sys.stderr.write("announce %s\n" % (self.path.split("?", 1)[0] + " " + self.address_string()))

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

        def handle_error(self, request, client_address):
            # A client that hangs up before reading the reply (aria2c on exit) is not our problem.
            sys.stderr.write(f"client {client_address[0]}:{client_address[1]} went away: {sys.exc_info()[1]!r}\n")

    ip, port = args.listen.rsplit(":", 1)
    srv = Server((ip, int(port)), Handler)
    print(f"READY port={srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
