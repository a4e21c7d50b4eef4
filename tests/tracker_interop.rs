//! `pixtorrent-tracker` with real clients: libtorrent, aria2c, Transmission (in a network namespace of
//! the test's own) and pixtorrent seed and leech through it, over HTTP and over UDP, with the memory
//! store and with the Redis store; every download is byte-identical to the original, and the
//! tracker's scrape (HTTP and UDP, the same figures) counts exactly the seeders, leechers and
//! `completed` events that happened.
//!
//! No peer finds another but through the tracker (DHT, PEX and LSD are off everywhere), so a finished
//! download shows that the tracker handed out the right addresses.
//!
//! What each client tells the tracker, which the exact counts below rely on:
//! - a seeder starting on complete data announces `started` with `left=0`: a seeder, no download;
//! - a leecher that finishes announces `completed` (one download) and is a seeder from then on
//!   (aria2c only if it seeds at all: with `--seed-time=0` it sends `stopped` alone);
//! - one that leaves announces `stopped` and is gone at once: pixtorrent when it exits, aria2c when
//!   its seed time is up, Transmission when its torrent is stopped, libtorrent when its session ends
//!   (over HTTP: over UDP it skips it now and then, see the UDP test);
//! - the tracker forgets a swarm, `downloaded` included, once its last peer has left.
//!
//! The last test is the plain reproduction of a tracker bug the UDP test ran into now and then.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pixtorrent::bencode::{decode, Limits};
use pixtorrent::types::InfoHash;

use common::netns::NetNs;
use common::payload::{assert_same_tree, Payload, SMALL};
use common::seeders::{aria2_leecher, free_port_on, LtOptions, LtPeer, Proc, Transmission};
use common::servers::Redis;
use common::{pixtorrent, tool};

const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// A download of the small payload takes seconds; this bounds a hung one.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the tracker's figures may take to reach what the clients did (announces are
/// asynchronous: `completed` and `stopped` follow the event by a moment).
const COUNTS_TIMEOUT: Duration = Duration::from_secs(30);

/// A torrent's figures at the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    /// Seeders.
    complete: u64,
    /// Leechers.
    incomplete: u64,
    /// `completed` events.
    downloaded: u64,
}

const fn counts(complete: u64, incomplete: u64, downloaded: u64) -> Counts {
    Counts {
        complete,
        incomplete,
        downloaded,
    }
}

/// A `pixtorrent-tracker` process (`-v`), HTTP and UDP on `ip`, ports chosen by the kernel and read
/// from its `listening:` lines. Killed by pid when dropped.
struct Tracker {
    proc: Proc,
    http: SocketAddr,
    udp: SocketAddr,
}

impl Tracker {
    fn start(ip: Ipv4Addr, extra: &[&str]) -> Tracker {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pixtorrent-tracker"));
        cmd.args(["--listen", &format!("{ip}:0"), "--udp", &format!("{ip}:0")])
            .arg("-v")
            .args(extra);
        let mut proc = Proc::spawn("pixtorrent-tracker", cmd);
        let udp = proc.wait_line(Duration::from_secs(10), |l| {
            l.starts_with("listening: udp://")
        });
        let lines = proc.stdout();
        let addr = |prefix: &str| -> Option<SocketAddr> {
            let line = lines.iter().find(|l| l.starts_with(prefix))?;
            line[prefix.len()..].split('/').next()?.parse().ok()
        };
        match (udp, addr("listening: http://"), addr("listening: udp://")) {
            (Some(_), Some(http), Some(udp)) => Tracker { proc, http, udp },
            _ => panic!("pixtorrent-tracker did not start\n{}", proc.dump(20)),
        }
    }

    fn http_url(&self) -> String {
        format!("http://{}/announce", self.http)
    }

    fn udp_url(&self) -> String {
        format!("udp://{}/announce", self.udp)
    }

    /// Waits (bounded) until the HTTP scrape and the UDP scrape both report `want` for `hash`.
    fn wait_counts(&mut self, hash: InfoHash, want: Counts, when: &str) {
        let start = Instant::now();
        let mut last = (None, None);
        while start.elapsed() < COUNTS_TIMEOUT {
            last = (http_scrape(self.http, hash), udp_scrape(self.udp, hash));
            if last == (Some(want), Some(want)) {
                eprintln!("{when}: {want:?} after {:.1?}", start.elapsed());
                return;
            }
            assert!(
                self.proc.try_status().is_none(),
                "the tracker exited\n{}",
                self.proc.dump(20)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "{when}: wanted {want:?}, the tracker at {} says (HTTP, UDP) {last:?} after \
             {COUNTS_TIMEOUT:?}",
            self.http
        );
    }

    /// Panics unless the tracker answered every request it got (`/stats`: no failure reason sent)
    /// and got at least `min_announces` announces.
    fn assert_no_failures(&self, min_announces: u64) {
        let body = http_get(self.http, "/stats")
            .unwrap_or_else(|| panic!("no /stats from {}\n{}", self.http, self.proc.dump(20)));
        let stats: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("/stats is not JSON ({e}): {body:?}"));
        let number = |k: &str| {
            stats[k]
                .as_u64()
                .unwrap_or_else(|| panic!("/stats {k}: {stats}"))
        };
        assert_eq!(
            number("failures_total"),
            0,
            "the tracker refused some request: {stats}\n{}",
            self.proc.dump(20)
        );
        assert!(
            number("announces_total") >= min_announces,
            "fewer than {min_announces} announces: {stats}"
        );
        eprintln!("tracker stats: {stats}");
    }
}

/// The body of `GET path` on `addr`.
fn http_get(addr: SocketAddr, path: &str) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = Vec::new();
    stream.take(1 << 20).read_to_end(&mut reply).ok()?;
    let at = reply.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    reply
        .starts_with(b"HTTP/1.1 200 ")
        .then(|| reply[at..].to_vec())
}

/// `GET /scrape?info_hash=…` (BEP 48) on the tracker at `addr`.
fn http_scrape(addr: SocketAddr, hash: InfoHash) -> Option<Counts> {
    let query: String = hash.0.iter().map(|b| format!("%{b:02X}")).collect();
    let body = http_get(addr, &format!("/scrape?info_hash={query}"))?;
    let doc = decode(&body, Limits::TRACKER_REPLY).ok()?;
    let files = doc.root().get(b"files")?.as_dict()?;
    let entry = files.iter().find(|(k, _)| k[..] == hash.0[..])?.1;
    let field = |k: &[u8]| entry.get(k)?.as_int().and_then(|n| u64::try_from(n).ok());
    Some(counts(
        field(b"complete")?,
        field(b"incomplete")?,
        field(b"downloaded")?,
    ))
}

/// A BEP 15 connect then scrape on the tracker at `addr`.
fn udp_scrape(addr: SocketAddr, hash: InfoHash) -> Option<Counts> {
    UdpProbe::connect(addr)?.scrape(hash)
}

/// The test's own BEP 15 requests (not a BitTorrent client): a socket on the tracker's address and a
/// connection id.
struct UdpProbe {
    socket: UdpSocket,
    conn: u64,
}

impl UdpProbe {
    /// Connects (two tries of a second each).
    fn connect(tracker: SocketAddr) -> Option<UdpProbe> {
        let socket = UdpSocket::bind(SocketAddr::new(tracker.ip(), 0)).ok()?;
        socket.connect(tracker).ok()?;
        socket.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut probe = UdpProbe { socket, conn: 0 };
        let reply = probe.exchange(0x0417_2710_1980, 0, &[])?;
        probe.conn = u64::from_be_bytes(reply.get(8..16)?.try_into().ok()?);
        Some(probe)
    }

    /// `conn, action, tid, body`.
    fn send(&self, conn: u64, action: u32, tid: u32, body: &[u8]) -> Option<()> {
        let mut packet = conn.to_be_bytes().to_vec();
        packet.extend_from_slice(&action.to_be_bytes());
        packet.extend_from_slice(&tid.to_be_bytes());
        packet.extend_from_slice(body);
        self.socket.send(&packet).ok().map(|_| ())
    }

    /// The reply to transaction `tid` with `action` (other datagrams are skipped; a second at most).
    fn recv(&self, action: u32, tid: u32) -> Option<Vec<u8>> {
        let mut buf = [0u8; 2048];
        for _ in 0..100 {
            let n = self.socket.recv(&mut buf).ok()?;
            let reply = &buf[..n];
            if n >= 8 && reply[4..8] == tid.to_be_bytes() {
                return (reply[..4] == action.to_be_bytes()).then(|| reply.to_vec());
            }
        }
        None
    }

    /// Whether replies with `action` to every one of `tids` come, in any order (a second at most
    /// each; other datagrams are skipped).
    fn replies(&self, action: u32, tids: &[u32]) -> bool {
        let mut missing = tids.to_vec();
        let mut buf = [0u8; 2048];
        for _ in 0..100 {
            if missing.is_empty() {
                return true;
            }
            let Ok(n) = self.socket.recv(&mut buf) else {
                return false;
            };
            if n >= 8 && buf[..4] == action.to_be_bytes() {
                let tid = u32::from_be_bytes(buf[4..8].try_into().unwrap());
                missing.retain(|&t| t != tid);
            }
        }
        missing.is_empty()
    }

    /// One request and its reply, sent twice at most.
    fn exchange(&self, conn: u64, action: u32, body: &[u8]) -> Option<Vec<u8>> {
        for _ in 0..2 {
            let tid = rand::random();
            self.send(conn, action, tid, body)?;
            if let Some(reply) = self.recv(action, tid) {
                return Some(reply);
            }
        }
        None
    }

    /// A scrape of one torrent.
    fn scrape(&self, hash: InfoHash) -> Option<Counts> {
        let reply = self
            .exchange(self.conn, 2, &hash.0)
            .filter(|r| r.len() >= 20)?;
        let be = |at: usize| u64::from(u32::from_be_bytes(reply[at..at + 4].try_into().unwrap()));
        // seeders, completed, leechers
        Some(counts(be(8), be(16), be(12)))
    }

    /// Sends an announce of `hash` by `peer_id` (port 6881, `event` as BEP 15 numbers it) with
    /// transaction id `tid`, without waiting for the reply.
    fn send_announce(&self, hash: InfoHash, peer_id: &[u8; 20], event: u32, left: u64, tid: u32) {
        let mut body = hash.0.to_vec();
        body.extend_from_slice(peer_id);
        body.extend_from_slice(&0u64.to_be_bytes()); // downloaded
        body.extend_from_slice(&left.to_be_bytes());
        body.extend_from_slice(&0u64.to_be_bytes()); // uploaded
        body.extend_from_slice(&event.to_be_bytes());
        body.extend_from_slice(&0u32.to_be_bytes()); // ip: the sender's
        body.extend_from_slice(&0u32.to_be_bytes()); // key
        body.extend_from_slice(&(-1i32).to_be_bytes()); // numwant: default
        body.extend_from_slice(&6881u16.to_be_bytes());
        self.send(self.conn, 1, tid, &body)
            .expect("send an announce");
    }
}

/// A pixtorrent seeder of the payload where it lies, on `ip`, for at most two minutes.
fn pixtorrent_seeder(payload: &Payload, ip: Ipv4Addr) -> Proc {
    pixtorrent(
        "pixtorrent seeder",
        &payload.torrent,
        &payload.save_dir,
        ip,
        &["--seed", "--seed-time", "120"],
    )
    .0
}

/// Waits for a pixtorrent leecher to exit 0 (it does once every piece is verified on disk).
fn wait_pixtorrent_exit(px: &mut Proc) {
    let start = Instant::now();
    let status = px.wait_exit(DOWNLOAD_TIMEOUT);
    assert!(
        status.is_some_and(|s| s.success()),
        "pixtorrent leecher: {status:?} after {:.1?}\n{}",
        start.elapsed(),
        px.dump(20)
    );
    eprintln!("pixtorrent leecher finished in {:.1?}", start.elapsed());
}

/// Waits until a pixtorrent run with `--seed` has every piece (its `seeding:` progress lines).
fn wait_pixtorrent_seeding(px: &mut Proc) {
    let start = Instant::now();
    while start.elapsed() < DOWNLOAD_TIMEOUT {
        if px.stderr().iter().any(|l| l.starts_with("seeding: ")) {
            eprintln!("pixtorrent seeding after {:.1?}", start.elapsed());
            return;
        }
        if let Some(status) = px.try_status() {
            panic!(
                "pixtorrent exited ({status}) before seeding\n{}",
                px.dump(20)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "pixtorrent did not finish within {DOWNLOAD_TIMEOUT:?}\n{}",
        px.dump(20)
    );
}

/// Ctrl-C to a pixtorrent seeder: it announces `stopped` and must exit 0.
fn interrupt(px: &mut Proc) {
    let _ = Command::new("kill")
        .args(["-INT", &px.pid().to_string()])
        .status();
    let status = px.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "pixtorrent exit {status:?} after SIGINT\n{}",
        px.dump(20)
    );
}

/// A libtorrent leecher of `torrent` into `out` on 127.0.0.1, started (its tracker has answered);
/// it stays, seeding, once done.
fn libtorrent_leecher(torrent: &Path, out: &Path) -> Option<LtPeer> {
    std::fs::create_dir_all(out).unwrap();
    let opts = LtOptions {
        seed: false,
        ..LtOptions::default()
    };
    LtPeer::start(torrent, out, &opts)
}

/// Waits until a libtorrent leecher has every piece.
fn wait_libtorrent_done(leecher: &mut LtPeer) {
    let done = leecher.wait_done(DOWNLOAD_TIMEOUT);
    eprintln!("libtorrent leecher: {done}");
}

/// Stops a libtorrent peer; it must exit cleanly (its session announces `stopped` as it ends).
fn stop_libtorrent(peer: &mut LtPeer) {
    let status = peer.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "libtorrent exit {status:?}\n{}",
        peer.proc.dump(20)
    );
}

#[test]
fn http_libtorrent_seeder_to_aria2_and_pixtorrent() {
    if tool("aria2c").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut tracker = Tracker::start(LOCALHOST, &[]);
    let payload = Payload::generate(dir.path(), SMALL, &tracker.http_url());
    let hash = payload.info_hash;
    // Slow at first (8 s for the payload at best), so that both leechers are seen as leechers.
    let opts = LtOptions {
        upload_limit: 1_000_000,
        ..LtOptions::default()
    };
    let Some(mut seeder) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    tracker.wait_counts(hash, counts(1, 0, 0), "libtorrent seeding");

    let aria2_out = dir.path().join("aria2");
    let px_out = dir.path().join("pixtorrent");
    // aria2c seeds for 3 s, then leaves. (With `--seed-time=0` it would announce no `completed`, only
    // `stopped` with `left=0`, which no tracker counts as a download: opentracker neither.)
    let aria2_opts = ["--file-allocation=none", "--seed-time=0.05"];
    let Some(mut aria2) = aria2_leecher(&payload.torrent, &aria2_out, &aria2_opts) else {
        return;
    };
    // pixtorrent stays, seeding, once done.
    let mut px = pixtorrent(
        "pixtorrent leecher",
        &payload.torrent,
        &px_out,
        LOCALHOST,
        &["--seed", "--seed-time", "120"],
    )
    .0;
    tracker.wait_counts(hash, counts(1, 2, 0), "aria2c and pixtorrent leeching");
    seeder.unlimit();
    let status = aria2.wait_exit(DOWNLOAD_TIMEOUT);
    assert!(
        status.is_some_and(|s| s.success()),
        "aria2c: {status:?}\n{}",
        aria2.dump(20)
    );
    assert_same_tree(&payload.root(), &aria2_out.join(payload.name()));
    wait_pixtorrent_seeding(&mut px);
    assert_same_tree(&payload.root(), &px_out.join(payload.name()));

    // libtorrent and pixtorrent seed; aria2c completed and stopped; two downloads.
    tracker.wait_counts(hash, counts(2, 0, 2), "both leechers done");
    interrupt(&mut px);
    tracker.wait_counts(hash, counts(1, 0, 2), "pixtorrent stopped");
    stop_libtorrent(&mut seeder);
    tracker.wait_counts(hash, counts(0, 0, 0), "libtorrent stopped");
    // started and stopped from each of three clients, completed from two.
    tracker.assert_no_failures(8);
}

/// aria2c seeding `torrent` from `save_dir` on 127.0.0.1 after a full hash check, as
/// [`common::seeders::Aria2Seeder`] does, but with DHT on: aria2c sends UDP tracker requests from its
/// DHT socket and skips `udp://` trackers without one. The DHT has no node to talk to (no entry point,
/// an empty routing table in `dht_file`), so it sends nothing.
fn aria2_udp_seeder(torrent: &Path, save_dir: &Path, dht_file: &Path) -> Option<Proc> {
    let aria2 = tool("aria2c")?;
    let localhost = IpAddr::V4(LOCALHOST);
    let mut cmd = Command::new(aria2);
    cmd.arg("--no-conf")
        .arg(format!("--dir={}", save_dir.display()))
        .arg("--interface=127.0.0.1")
        .arg(format!("--listen-port={}", free_port_on(localhost)))
        .arg(format!("--stop-with-process={}", std::process::id()))
        // 4 s for the payload at best: both leechers are seen as leechers.
        .arg("--max-upload-limit=2000000")
        .args([
            "--enable-dht=true",
            "--enable-dht6=false",
            &format!("--dht-listen-port={}", free_udp_port_on(localhost)),
            &format!("--dht-file-path={}", dht_file.display()),
            "--check-integrity=true",
            "--bt-hash-check-seed=true",
            "--seed-ratio=0.0",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--disable-ipv6=true",
            "--file-allocation=none",
            "--summary-interval=0",
            "--console-log-level=notice",
            "--auto-save-interval=0",
            "--bt-save-metadata=false",
            "--rpc-save-upload-metadata=false",
        ])
        .arg(torrent);
    Some(Proc::spawn("aria2c seeder", cmd))
}

/// A UDP port nothing uses right now at `ip`.
fn free_udp_port_on(ip: IpAddr) -> u16 {
    UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn udp_aria2_seeder_to_libtorrent_and_pixtorrent() {
    if tool("aria2c").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut tracker = Tracker::start(LOCALHOST, &[]);
    let payload = Payload::generate(dir.path(), SMALL, &tracker.udp_url());
    let hash = payload.info_hash;
    let dht = dir.path().join("dht.dat");
    let Some(_seeder) = aria2_udp_seeder(&payload.torrent, &payload.save_dir, &dht) else {
        return;
    };
    tracker.wait_counts(hash, counts(1, 0, 0), "aria2c seeding");

    // libtorrent stays, seeding, once done; pixtorrent leaves.
    let lt_out = dir.path().join("libtorrent");
    let Some(mut lt) = libtorrent_leecher(&payload.torrent, &lt_out) else {
        return;
    };
    let px_out = dir.path().join("pixtorrent");
    let mut px = pixtorrent(
        "pixtorrent leecher",
        &payload.torrent,
        &px_out,
        LOCALHOST,
        &[],
    )
    .0;
    tracker.wait_counts(hash, counts(1, 2, 0), "libtorrent and pixtorrent leeching");
    wait_libtorrent_done(&mut lt);
    assert_same_tree(&payload.root(), &lt_out.join(payload.name()));
    wait_pixtorrent_exit(&mut px);
    assert_same_tree(&payload.root(), &px_out.join(payload.name()));

    // aria2c and libtorrent seed; pixtorrent completed and stopped; two downloads.
    tracker.wait_counts(hash, counts(2, 0, 2), "both leechers done");
    // started, completed and stopped from pixtorrent; started from aria2c; started and completed
    // from libtorrent.
    tracker.assert_no_failures(6);
    // Not checked: libtorrent leaving. python3-libtorrent 2.0.8 ends its session without a UDP
    // `stopped` about one time in three (seen against opentracker as well; over HTTP it always
    // sends one), so the tracker rightly keeps counting it.
}

/// What a Transmission test needs: a namespace, and a tracker on the host side of its veth (the
/// address the namespace reaches and the host-side peers bind: Transmission refuses loopback peers).
fn namespace_and_tracker() -> Option<(NetNs, Tracker)> {
    for t in ["transmission-daemon", "transmission-remote"] {
        tool(t)?;
    }
    let ns = NetNs::create()?;
    let tracker = Tracker::start(ns.host_ip, &[]);
    Some((ns, tracker))
}

/// Transmission 3.00 does not create zero-length files: makes them, so that the comparison covers
/// the rest (their absence is Transmission's, not the tracker's).
fn add_empty_files(payload: &Payload, out: &Path) {
    for (rel, len) in &payload.files {
        let path = out.join(payload.name()).join(rel);
        if *len == 0 && !path.exists() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::File::create(&path).unwrap();
        }
    }
}

#[test]
fn http_pixtorrent_seeder_to_transmission_in_a_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let Some((ns, mut tracker)) = namespace_and_tracker() else {
        return;
    };
    let payload = Payload::generate(dir.path(), SMALL, &tracker.http_url());
    let hash = payload.info_hash;
    let mut seeder = pixtorrent_seeder(&payload, ns.host_ip);
    tracker.wait_counts(hash, counts(1, 0, 0), "pixtorrent seeding");

    let out = dir.path().join("transmission");
    std::fs::create_dir_all(&out).unwrap();
    let start = Instant::now();
    let Some(leecher) = Transmission::leech(&ns, &payload.torrent, hash, &out) else {
        return;
    };
    if let Err(info) = leecher.wait_done(DOWNLOAD_TIMEOUT) {
        panic!(
            "Transmission did not finish in {:.1?}:\n{info}\n{}\n{}",
            start.elapsed(),
            leecher.proc.dump(20),
            seeder.dump(20)
        );
    }
    eprintln!("Transmission finished in {:.1?}", start.elapsed());
    // Transmission announces `completed` and seeds on.
    tracker.wait_counts(hash, counts(2, 0, 1), "Transmission done");
    // Stopping the torrent closes its files (its write cache is flushed) and announces `stopped`.
    leecher.remote(&["-t", &hash.to_hex(), "--stop"]);
    tracker.wait_counts(hash, counts(1, 0, 1), "Transmission stopped");
    add_empty_files(&payload, &out);
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    interrupt(&mut seeder);
    tracker.wait_counts(hash, counts(0, 0, 0), "pixtorrent stopped");
    tracker.assert_no_failures(5);
    drop(leecher);
    drop(tracker);
    drop(ns);
}

#[test]
fn udp_transmission_seeder_in_a_namespace_to_pixtorrent() {
    let dir = tempfile::tempdir().unwrap();
    let Some((ns, mut tracker)) = namespace_and_tracker() else {
        return;
    };
    let payload = Payload::generate(dir.path(), SMALL, &tracker.udp_url());
    let hash = payload.info_hash;
    let Some(seeder) = Transmission::seed(&ns, &payload.torrent, hash, &payload.save_dir, 0) else {
        return;
    };
    tracker.wait_counts(hash, counts(1, 0, 0), "Transmission seeding");

    let out = dir.path().join("pixtorrent");
    let mut px = pixtorrent(
        "pixtorrent leecher",
        &payload.torrent,
        &out,
        ns.host_ip,
        &[],
    )
    .0;
    wait_pixtorrent_exit(&mut px);
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    // pixtorrent completed and stopped.
    tracker.wait_counts(hash, counts(1, 0, 1), "pixtorrent done");
    seeder.remote(&["-t", &hash.to_hex(), "--stop"]);
    tracker.wait_counts(hash, counts(0, 0, 0), "Transmission stopped");
    tracker.assert_no_failures(5);
    drop(seeder);
    drop(tracker);
    drop(ns);
}

#[test]
fn redis_store_pixtorrent_seeder_to_libtorrent_across_two_trackers() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Two tracker processes on one Redis: the seeder announces to the first, the leecher to the
    // second, so the leecher finds the seeder only through the shared store.
    let mut first = Tracker::start(LOCALHOST, &["--redis", &redis.url()]);
    let mut second = Tracker::start(LOCALHOST, &["--redis", &redis.url()]);
    // The seeder over UDP, the leecher over HTTP (libtorrent's UDP `stopped` is unreliable: see
    // `udp_aria2_seeder_to_libtorrent_and_pixtorrent`).
    let payload = Payload::generate(dir.path(), SMALL, &first.udp_url());
    let hash = payload.info_hash;
    let mut seeder = pixtorrent_seeder(&payload, LOCALHOST);
    first.wait_counts(hash, counts(1, 0, 0), "pixtorrent seeding (first tracker)");
    second.wait_counts(hash, counts(1, 0, 0), "pixtorrent seeding (second tracker)");

    let leech_torrent =
        payload.torrent_with(&dir.path().join("second.torrent"), &second.http_url());
    let out = dir.path().join("libtorrent");
    let Some(mut leecher) = libtorrent_leecher(&leech_torrent, &out) else {
        return;
    };
    wait_libtorrent_done(&mut leecher);
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    // libtorrent announces `completed` and seeds on.
    second.wait_counts(hash, counts(2, 0, 1), "libtorrent done (second tracker)");
    first.wait_counts(hash, counts(2, 0, 1), "libtorrent done (first tracker)");
    stop_libtorrent(&mut leecher);
    first.wait_counts(hash, counts(1, 0, 1), "libtorrent stopped");
    interrupt(&mut seeder);
    second.wait_counts(hash, counts(0, 0, 0), "pixtorrent stopped");
    first.assert_no_failures(2);
    second.assert_no_failures(3);
}

/// What `udp_aria2_seeder_to_libtorrent_and_pixtorrent` ran into now and then (the tracker counting
/// 3 seeders and 3 downloads where there were 2): pixtorrent, leaving right after its download,
/// sends a `completed` whose reply it no longer awaits, a second `completed`, then `stopped`; the
/// tracker applied the first `completed` after the `stopped` and so counted a peer that had left.
/// Here the same without timing luck: `started` then at once `stopped` from one socket, for many
/// peers. Every peer left, so the tracker must count nobody, as opentracker does.
#[test]
fn udp_announces_from_one_client_apply_in_the_order_sent() {
    const PEERS: u32 = 200;
    let tracker = Tracker::start(LOCALHOST, &[]);
    let probe = UdpProbe::connect(tracker.udp).expect("UDP connect");
    let hash = InfoHash([0x5a; 20]);
    for i in 0..PEERS {
        let mut peer_id = *b"-XX0001-000000000000";
        peer_id[8..12].copy_from_slice(&i.to_be_bytes());
        let (started, stopped) = (rand::random(), rand::random());
        probe.send_announce(hash, &peer_id, 2, 1000, started);
        probe.send_announce(hash, &peer_id, 3, 1000, stopped);
        assert!(
            probe.replies(1, &[started, stopped]),
            "no reply to `started` or `stopped` of peer {i}"
        );
    }
    let left = probe.scrape(hash).expect("UDP scrape");
    assert_eq!(
        left,
        counts(0, 0, 0),
        "{PEERS} peers each announced `started` then `stopped` (one datagram after the other); \
         the tracker still counts some"
    );
}
