#!/usr/bin/python3
"""A libtorrent 2.0 peer for pixtorrent's interop tests: seeds a torrent from a data directory or leeches
it into one, over TCP only by default (--utp adds uTP, --no-tcp drops TCP), with DHT/LSD/UPnP/NAT-PMP off
and several connections per IP allowed (everything runs on loopback or in a test's own network
namespace).

Run with /usr/bin/python3 (Debian's python3-libtorrent). Lines on stdout, one fact each:
  READY port=N                       listening on N, torrent added (checked), tracker answered
  STATS t=S state=X progress=P up=N down=N peers=N seeds=N   every --stats-secs and once at exit
  METADATA t=S                       (--magnet) the torrent's metadata arrived from peers
  DONE t=S                           (leech) every piece downloaded and verified
  PEER IP:PORT blocks=N              (leech, after DONE) blocks received from each peer address
  PEERLOG IP:PORT <== NAME [ DETAIL ]  (--peer-log) a message received from a peer, as libtorrent's
                                     peer log words it (HANDSHAKE, HAVE_ALL, ALLOWED_FAST, PIECE, ...)
  PEERLOG IP:PORT ==> NAME [ DETAIL ]  (--peer-log-sent) a message sent to a peer (CHOKE, UNCHOKE,
                                     ALLOWED_FAST, PIECE, REJECT_PIECE, ...), in order with the above
  CHOKE t=S up=N                     (--choke-after-bytes) unchoke slots set to 0: every peer is choked
  UNCHOKE t=S up=N                   (--unchoke-after-secs) unchoke slots restored
  ALERTS_DROPPED                     libtorrent's alert queue overflowed: some alerts were lost
  ANNOUNCED t=S peers=N              (--announce-secs) a tracker answered an announce
  TRACKER KIND message               a tracker error or warning
  ERROR message                      fatal; the exit status is 2
  EXIT up=N down=N                   last line on a clean exit
up/down are payload bytes. Stops cleanly on SIGTERM, SIGINT, end of stdin with --stop-on-eof (the test's
guard closes it), when its --parent-pid is gone, or after --max-secs. SIGUSR1, or the line `unlimit` on
stdin with --stop-on-eof, lifts the rate limits.
"""

import argparse
import faulthandler
import os
import signal
import sys
import threading
import time

import libtorrent as lt

STOP = threading.Event()
UNLIMIT = threading.Event()


def say(line):
    print(line, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--torrent")
    src.add_argument("--magnet", help="leech from a magnet link: metadata from peers first (BEP 9)")
    p.add_argument("--dir", required=True, help="seed: holds the torrent's files; leech: where to put them")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--seed", action="store_true")
    mode.add_argument("--leech", action="store_true")
    p.add_argument("--listen", default="127.0.0.1:0", help="IP:PORT to listen on (port 0: any)")
    p.add_argument("--upload-limit", type=int, default=0, help="bytes/s, 0 for none")
    p.add_argument("--download-limit", type=int, default=0, help="bytes/s, 0 for none")
    p.add_argument("--stats-secs", type=float, default=1.0)
    p.add_argument("--ready-timeout", type=float, default=60.0, help="give up waiting to be READY")
    p.add_argument("--no-tracker-wait", action="store_true", help="READY without a tracker reply")
    p.add_argument("--recheck", action="store_true", help="seed: hash-check the data before READY")
    p.add_argument("--exit-when-done", action="store_true", help="leech: exit after DONE")
    p.add_argument("--max-secs", type=float, default=900.0, help="hard bound on the lifetime")
    p.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone")
    p.add_argument("--connect", action="append", default=[], help="IP:PORT of a peer to dial")
    p.add_argument("--stop-on-eof", action="store_true", help="stop at the end of stdin")
    p.add_argument(
        "--encryption",
        choices=["enabled", "forced", "disabled"],
        default="enabled",
        help="MSE/PE policy both ways (forced: RC4 only, plaintext refused)",
    )
    p.add_argument(
        "--tcp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="BitTorrent over TCP, incoming and outgoing (--no-tcp: neither)",
    )
    p.add_argument(
        "--utp",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="BitTorrent over uTP, incoming and outgoing (off unless --utp)",
    )
    p.add_argument(
        "--peer-log",
        action="store_true",
        help="print a PEERLOG line for every message received from a peer (libtorrent's peer log)",
    )
    p.add_argument("--unchoke-slots", type=int, help="unchoke_slots_limit (libtorrent's default: 8)")
    p.add_argument(
        "--unchoke-interval", type=int, help="unchoke_interval in seconds (libtorrent's default: 15)"
    )
    p.add_argument(
        "--peer-log-sent",
        action="store_true",
        help="with the peer log, a PEERLOG line for every message sent to a peer too (implies --peer-log)",
    )
    p.add_argument(
        "--choke-after-bytes",
        type=int,
        help="once this many payload bytes are uploaded, set unchoke_slots_limit to 0: libtorrent's "
        "choker chokes every peer within about a second and rejects the queued requests of BEP 6 peers",
    )
    p.add_argument(
        "--unchoke-after-secs",
        type=float,
        help="with --choke-after-bytes: restore unchoke_slots_limit this long after the choke",
    )
    p.add_argument(
        "--announce-secs",
        type=int,
        help="min_announce_interval (libtorrent's default: 300), so that a short tracker interval is "
        "honoured; prints an ANNOUNCED line for each tracker reply",
    )
    return p.parse_args()


def make_session(args):
    ip = args.listen.rsplit(":", 1)[0].strip("[]")
    settings = {
        "listen_interfaces": args.listen,
        "outgoing_interfaces": ip,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": args.utp,
        "enable_outgoing_utp": args.utp,
        "enable_incoming_tcp": args.tcp,
        "enable_outgoing_tcp": args.tcp,
        "allow_multiple_connections_per_ip": True,
        "in_enc_policy": {"forced": 0, "enabled": 1, "disabled": 2}[args.encryption],
        "out_enc_policy": {"forced": 0, "enabled": 1, "disabled": 2}[args.encryption],
        "allowed_enc_level": 2 if args.encryption == "forced" else 3,
        # Rate limits must apply to loopback and namespace peers too.
        "ignore_limits_on_local_network": False,
        "upload_rate_limit": args.upload_limit,
        "download_rate_limit": args.download_limit,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "min_reconnect_time": 1,
        "peer_connect_timeout": 5,
        "user_agent": "pixtorrent-interop-libtorrent/" + lt.__version__,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification
        | lt.alert.category_t.storage_notification
        | lt.alert.category_t.block_progress_notification,
    }
    if args.peer_log:
        settings["alert_mask"] |= lt.alert.category_t.peer_log_notification
        # The peer log posts several alerts per block: room for them between two 100 ms drains.
        settings["alert_queue_size"] = 1_000_000
    if args.unchoke_slots is not None:
        settings["unchoke_slots_limit"] = args.unchoke_slots
    if args.unchoke_interval is not None:
        settings["unchoke_interval"] = args.unchoke_interval
    if args.announce_secs is not None:
        settings["min_announce_interval"] = args.announce_secs
    ses = lt.session(settings)
    # Put every address in the global peer class, so the session's rate limits cover local peers.
    everyone = lt.ip_filter()
    everyone.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
    ses.set_peer_class_filter(everyone)
    return ses


def watch_stdin():
    """Reads commands from stdin (`unlimit`: lift the rate limits); its end means stop."""
    try:
        for line in sys.stdin:
            if line.strip() == "unlimit":
                UNLIMIT.set()
    except (OSError, ValueError):
        pass
    STOP.set()


def stats_line(t0, h):
    s = h.status()
    return (
        f"STATS t={time.monotonic() - t0:.1f} state={str(s.state).rsplit('.', 1)[-1]} "
        f"progress={s.progress:.4f} up={s.total_payload_upload} down={s.total_payload_download} "
        f"peers={s.num_peers} seeds={s.num_seeds}"
    )


def drain_alerts(ses, state):
    """Notes tracker replies, errors and blocks received from pending alerts."""
    for a in ses.pop_alerts():
        if isinstance(a, lt.tracker_reply_alert):
            state["tracker_ok"] = True
            if state["announce_log"]:
                say(f"ANNOUNCED t={time.monotonic() - state['t0']:.1f} peers={a.num_peers}")
        elif isinstance(a, (lt.tracker_error_alert, lt.tracker_warning_alert)):
            say(f"TRACKER {type(a).__name__} {a.message()}")
        elif isinstance(a, (lt.file_error_alert, lt.torrent_error_alert, lt.listen_failed_alert)):
            state["fatal"] = f"{type(a).__name__}: {a.message()}"
        elif isinstance(a, lt.block_finished_alert):
            ip, port = a.endpoint
            key = f"{ip}:{port}"
            state["blocks"][key] = state["blocks"].get(key, 0) + 1
        elif isinstance(a, lt.peer_log_alert):
            # message(): "NAME peer [ IP:PORT client: C ] [IP:PORT] <== EVENT [ DETAIL ]"; "<==" marks a
            # message received ("==>" sent, "<<<"/">>>" socket events, "***" notes).
            text = a.message()
            at = text.find("] <== ")
            if at < 0 and state["log_sent"]:
                at = text.find("] ==> ")
            if at >= 0:
                ip, port = a.endpoint
                host = f"[{ip}]" if ":" in ip else ip
                say(f"PEERLOG {host}:{port} {text[at + 2:]}")
        elif isinstance(a, lt.alerts_dropped_alert):
            say("ALERTS_DROPPED")
        elif isinstance(a, lt.hash_failed_alert):
            state["hash_failures"] = state.get("hash_failures", 0) + 1
            say(f"HASHFAIL piece={a.piece_index}")


def choke_control(args, ses, h, state, t0, now):
    """--choke-after-bytes / --unchoke-after-secs: sets unchoke_slots_limit to 0 once enough is
    uploaded (libtorrent 2.0.8 reruns its choker on that change: every peer is choked within about a
    second, and the requests queued by BEP 6 peers are answered with rejects), then back."""
    if args.choke_after_bytes is None:
        return
    up = h.status().total_payload_upload
    if "choked_at" not in state and up >= args.choke_after_bytes:
        state["choked_at"] = now
        state["slots"] = ses.get_settings()["unchoke_slots_limit"]
        ses.apply_settings({"unchoke_slots_limit": 0})
        say(f"CHOKE t={now - t0:.1f} up={up}")
    elif (
        args.unchoke_after_secs is not None
        and "choked_at" in state
        and "unchoked" not in state
        and now - state["choked_at"] >= args.unchoke_after_secs
    ):
        state["unchoked"] = True
        ses.apply_settings({"unchoke_slots_limit": state["slots"]})
        say(f"UNCHOKE t={now - t0:.1f} up={up}")


def main():
    faulthandler.enable()  # a crash in libtorrent prints where, on stderr
    args = parse_args()
    if args.peer_log_sent:
        args.peer_log = True
    t0 = time.monotonic()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: STOP.set())
    signal.signal(signal.SIGUSR1, lambda *_: UNLIMIT.set())
    if args.stop_on_eof:
        threading.Thread(target=watch_stdin, daemon=True).start()

    ses = make_session(args)
    if args.magnet:
        atp = lt.parse_magnet_uri(args.magnet)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(args.torrent)
    atp.save_path = args.dir
    atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    if args.seed and not args.recheck:
        # Trust the data: pieces are hashed when first read instead of all up front.
        atp.flags |= lt.torrent_flags.seed_mode
    h = ses.add_torrent(atp)
    if args.seed and args.recheck:
        h.force_recheck()
    for peer in args.connect:
        peer_ip, peer_port = peer.rsplit(":", 1)
        h.connect_peer((peer_ip.strip("[]"), int(peer_port)))

    state = {
        "tracker_ok": False,
        "blocks": {},
        "log_sent": args.peer_log_sent,
        "announce_log": args.announce_secs is not None,
        "t0": t0,
    }
    has_trackers = bool(atp.trackers) if args.magnet else any(True for _ in atp.ti.trackers())
    ready, done, metadata = False, False, not args.magnet
    next_stats = time.monotonic()
    code = 0
    while not STOP.is_set():
        # Not `ses.wait_for_alert(100)`: python3-libtorrent 2.0.8 wraps the alert it returns, which the
        # network thread may have freed meanwhile, and segfaults now and then (seen in these tests).
        time.sleep(0.1)
        drain_alerts(ses, state)
        now = time.monotonic()
        if "fatal" in state:
            say(f"ERROR {state['fatal']}")
            code = 2
            break
        if args.parent_pid and os.getppid() != args.parent_pid:
            say("ERROR parent process is gone")
            code = 2
            break
        if now - t0 > args.max_secs:
            say(f"ERROR still running after --max-secs {args.max_secs}")
            code = 2
            break
        choke_control(args, ses, h, state, t0, now)
        if UNLIMIT.is_set():
            UNLIMIT.clear()
            ses.apply_settings({"upload_rate_limit": 0, "download_rate_limit": 0})
            say("UNLIMITED")
        status = h.status()
        checking = status.state in (
            lt.torrent_status.checking_files,
            lt.torrent_status.checking_resume_data,
        )
        if not ready:
            seeding_ok = not args.seed or (not checking and status.is_seeding)
            tracker_ok = state["tracker_ok"] or args.no_tracker_wait or not has_trackers
            if seeding_ok and tracker_ok and ses.is_listening():
                ready = True
                say(f"READY port={ses.listen_port()}")
            elif now - t0 > args.ready_timeout:
                why = "data not complete (wrong --dir?)" if not seeding_ok else "no tracker reply"
                say(f"ERROR not ready after {args.ready_timeout}s: {why}")
                code = 2
                break
        if not metadata and status.has_metadata:
            metadata = True
            say(f"METADATA t={now - t0:.1f}")
        if args.leech and not done and status.is_seeding:
            done = True
            say(f"DONE t={now - t0:.1f}")
            drain_alerts(ses, state)  # the last blocks' alerts
            for key, blocks in sorted(state["blocks"].items()):
                say(f"PEER {key} blocks={blocks}")
            if args.exit_when_done:
                break
        if now >= next_stats:
            say(stats_line(t0, h))
            next_stats = now + args.stats_secs

    say(stats_line(t0, h))
    s = h.status()
    up, down = s.total_payload_upload, s.total_payload_download
    ses.pause()
    if code == 0:
        say(f"EXIT up={up} down={down}")
    return code


if __name__ == "__main__":
    sys.exit(main())
