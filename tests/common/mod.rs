//! Shared fixtures for integration tests: a real opentracker on 127.0.0.1 (and on a test namespace's
//! host-side addresses) with a scrape to wait for seeders, a junk HTTP "tracker", and torrents written
//! to temporary directories; [`payload`] (an Internet-Archive-shaped payload), [`seeders`] (other
//! clients as peers), [`blackhole`] (peers that stall every request), [`netns`] (a network namespace
//! of the test's own) and [`redis_cluster`] (a real 6-node Redis Cluster). Every process a fixture
//! starts is killed (by pid) and reaped when the fixture is dropped; every loop is bounded.

#![allow(dead_code)] // each test binary uses a different subset

pub mod blackhole;
pub mod netns;
pub mod payload;
pub mod redis_cluster;
pub mod rtorrent;
pub mod seeders;
pub mod servers;
pub mod webserver;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pixtorrent::bencode::{decode, Limits, Value};
use pixtorrent::types::InfoHash;

/// Whether missing external tools fail the test (CI, via the README's test command) or skip it.
pub fn tools_required() -> bool {
    std::env::var_os("PIXTORRENT_REQUIRE_TOOLS").is_some_and(|v| v == "1")
}

/// `Some(path)` when `tool` is installed; otherwise skips (prints why) or, under CI, panics.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            !tools_required(),
            "{name} is not installed but PIXTORRENT_REQUIRE_TOOLS=1"
        );
        eprintln!("SKIPPED: {name} is not installed (the README's test command installs it)");
    }
    found
}

/// A TCP port nothing listens on right now.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP port nothing listens on right now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running Debian opentracker, whitelist mode, HTTP and UDP on 127.0.0.1.
pub struct Opentracker {
    child: Child,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:P/announce`
    pub http: String,
    /// `udp://127.0.0.1:U/announce`
    pub udp: String,
    /// The HTTP port (the same on every address it binds).
    pub tcp_port: u16,
}

impl Opentracker {
    /// Starts opentracker serving only `hashes`; `None` (skipped) when it is not installed.
    pub fn start(hashes: &[InfoHash]) -> Option<Opentracker> {
        Self::start_on(hashes, &[])
    }

    /// Like [`Opentracker::start`], listening on each of `extra_ips` too (the same ports): for peers
    /// in a test's network namespace. Each address must already be on a host interface.
    pub fn start_on(hashes: &[InfoHash], extra_ips: &[Ipv4Addr]) -> Option<Opentracker> {
        let bin = tool("opentracker")?;
        let dir = tempfile::tempdir().unwrap();
        // opentracker chroots into -d and drops to `nobody`: the directory must be world-readable and
        // the whitelist path is given relative to the chroot.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let list: String = hashes.iter().map(|h| format!("{h}\n")).collect();
        std::fs::write(dir.path().join("whitelist.txt"), list).unwrap();
        let (tcp, udp) = (free_tcp_port(), free_udp_port());
        // Each `-p`/`-P` binds the address of the `-i` before it.
        let mut cmd = Command::new(bin);
        for ip in std::iter::once(Ipv4Addr::LOCALHOST).chain(extra_ips.iter().copied()) {
            cmd.args(["-i", &ip.to_string()]).args([
                "-p",
                &tcp.to_string(),
                "-P",
                &udp.to_string(),
            ]);
        }
        let child = cmd
            .arg("-d")
            .arg(dir.path())
            .args(["-w", "/whitelist.txt"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start opentracker");
        let tracker = Opentracker {
            child,
            _dir: dir,
            http: format!("http://127.0.0.1:{tcp}/announce"),
            udp: format!("udp://127.0.0.1:{udp}/announce"),
            tcp_port: tcp,
        };
        for ip in std::iter::once(Ipv4Addr::LOCALHOST).chain(extra_ips.iter().copied()) {
            wait_for_tcp(
                SocketAddr::new(IpAddr::V4(ip), tcp),
                Duration::from_secs(10),
            );
        }
        Some(tracker)
    }

    /// The HTTP announce URL on `ip` (127.0.0.1 or one of the `extra_ips`).
    pub fn http_on(&self, ip: Ipv4Addr) -> String {
        format!("http://{ip}:{}/announce", self.tcp_port)
    }
}

impl Drop for Opentracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (bounded) until something accepts TCP connections on `addr`.
pub fn wait_for_tcp(addr: SocketAddr, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listening on {addr} after {limit:?}");
}

/// An HTTP server on 127.0.0.1 that answers like a broken tracker, by path:
/// `/html`, `/garbage`, `/404`, `/truncated`, `/huge` (12 MiB, no length), `/silent`, `/failure`,
/// `/evil` (a failure reason and a warning full of terminal escapes), and
/// `/file` (the bytes given to [`JunkServer::with_file`]).
pub struct JunkServer {
    /// `http://127.0.0.1:P`
    pub base: String,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl JunkServer {
    /// Starts the server thread.
    pub fn start() -> JunkServer {
        Self::with_file(Vec::new())
    }

    /// Starts the server thread, serving `file` at `/file`.
    pub fn with_file(file: Vec<u8>) -> JunkServer {
        let file = Arc::new(file);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            // Bounded: at most 200 connections, and the test stops it long before.
            for stream in listener.incoming().take(200) {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let (flag, file) = (flag.clone(), file.clone());
                    std::thread::spawn(move || serve_junk(stream, &flag, &file));
                }
            }
        });
        JunkServer {
            base: format!("http://{addr}"),
            stop,
            addr,
            thread: Some(thread),
        }
    }
}

fn serve_junk(mut stream: TcpStream, stop: &AtomicBool, file: &[u8]) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Skip the headers.
    let mut header = String::new();
    for _ in 0..100 {
        header.clear();
        if reader.read_line(&mut header).map_or(true, |n| n == 0) || header == "\r\n" {
            break;
        }
    }
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let ok = |body: &[u8]| {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    let reply: Vec<u8> = match path.as_str() {
        "/html" => ok(b"<!DOCTYPE html><html><body>Not a tracker</body></html>"),
        "/garbage" => ok(b"hello, this is not bencode"),
        "/404" => b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope".to_vec(),
        "/failure" => ok(b"d14:failure reason12:unregisterede"),
        "/evil" => ok(b"d14:failure reason18:\x1b[31mEVIL\x1b[0m\xc2\x9b2J!15:warning message8:\x1b]0;pwnde"),
        "/file" => ok(file),
        "/truncated" => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nd8:intervali1800e5:pee".to_vec(),
        "/huge" => {
            // No Content-Length: the client must stop reading at its own limit.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..192 {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
            }
            return;
        }
        "/silent" => {
            for _ in 0..100 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        _ => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_vec(),
    };
    let _ = stream.write_all(&reply);
}

impl Drop for JunkServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A "tracker" that answers every announce with exactly `peers` (IPv4, compact) and interval 1800:
/// for a client that must not be handed its own address (rtorrent, given itself by opentracker on
/// 127.0.0.1, dials only that and never the seeder). Returns the server and its announce URL.
pub fn fixed_tracker(peers: &[SocketAddr]) -> (JunkServer, String) {
    let mut compact = Vec::new();
    for peer in peers {
        if let IpAddr::V4(ip) = peer.ip() {
            compact.extend_from_slice(&ip.octets());
            compact.extend_from_slice(&peer.port().to_be_bytes());
        }
    }
    let reply = Value::dict([
        ("interval", Value::Int(1800)),
        ("peers", Value::Bytes(compact)),
    ]);
    let server = JunkServer::with_file(reply.encode());
    let url = format!("{}/file", server.base);
    (server, url)
}

/// A small single-file torrent announcing to `tiers`; returns its path and info-hash.
pub fn write_torrent(dir: &Path, name: &str, tiers: &[Vec<String>]) -> (PathBuf, InfoHash) {
    let info = Value::dict([
        ("name", Value::str(name)),
        ("piece length", Value::Int(16384)),
        ("pieces", Value::Bytes(vec![0xab; 20])),
        ("length", Value::Int(1000)),
    ]);
    let mut torrent = Value::dict([("info", info)]);
    if let Some(first) = tiers.first().and_then(|t| t.first()) {
        torrent.insert("announce", Value::str(first));
    }
    let list = tiers
        .iter()
        .map(|t| Value::List(t.iter().map(|u| Value::str(u)).collect()))
        .collect();
    torrent.insert("announce-list", Value::List(list));
    let bytes = torrent.encode();
    let path = dir.join(format!("{name}.torrent"));
    std::fs::write(&path, &bytes).unwrap();
    let meta = pixtorrent::metainfo::Metainfo::from_bytes(&bytes).unwrap();
    (path, meta.info_hash)
}

/// The info-hash `write_torrent` will produce for `name` (it does not depend on the trackers).
pub fn hash_for(name: &str) -> InfoHash {
    let dir = tempfile::tempdir().unwrap();
    write_torrent(dir.path(), name, &[]).1
}

/// `(complete, incomplete)` for `hash` from the tracker's HTTP scrape (`/announce` → `/scrape`).
pub fn scrape(announce: &str, hash: InfoHash) -> Option<(i64, i64)> {
    let rest = announce.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/')?;
    let path = format!("/{}", path.replace("announce", "scrape"));
    let query: String = hash.0.iter().map(|b| format!("%{b:02X}")).collect();
    let addr: SocketAddr = host.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path}?info_hash={query} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = Vec::new();
    stream.take(1 << 20).read_to_end(&mut reply).ok()?;
    let at = reply.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let doc = decode(&reply[at..], Limits::TRACKER_REPLY).ok()?;
    let files = doc.root().get(b"files")?.as_dict()?;
    let (_, entry) = files.first()?;
    Some((
        entry.get(b"complete")?.as_int()?,
        entry.get(b"incomplete")?.as_int()?,
    ))
}

/// Waits (bounded) until the tracker counts at least `n` seeders of `hash`; panics after `limit`.
pub fn wait_for_seeders(announce: &str, hash: InfoHash, n: i64, limit: Duration) {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < limit {
        last = scrape(announce, hash);
        if last.is_some_and(|(complete, _)| complete >= n) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "the tracker at {announce} counts {last:?} (seeders, leechers) after {limit:?}; wanted {n} \
         seeders"
    );
}

/// A payload of `size` bytes announcing to a fresh opentracker on 127.0.0.1.
pub fn payload_and_tracker(dir: &Path, size: u64) -> Option<(payload::Payload, Opentracker)> {
    let mut payload = payload::Payload::generate(dir, size, "http://127.0.0.1:9/announce");
    let tracker = Opentracker::start(&[payload.info_hash])?;
    payload.set_announce(&tracker.http);
    Some((payload, tracker))
}

/// A `pixtorrent` command with the DHT off (`PIXTORRENT_NO_DHT=1`) and the public DHT routers
/// forbidden (`PIXTORRENT_FORBID_PUBLIC_DHT=1`): no test reaches them, and one that turns the DHT on
/// without a local `--dht-bootstrap` fails instead. DHT tests remove the first variable. Its state
/// directory is under the target directory.
pub fn px() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pixtorrent"));
    cmd.env("PIXTORRENT_NO_DHT", "1")
        .env("PIXTORRENT_FORBID_PUBLIC_DHT", "1")
        // Resume files and the DHT table go under target/tmp, never into the user's state.
        .env(
            "XDG_STATE_HOME",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("state"),
        );
    cmd
}

/// Starts `pixtorrent -t TORRENT -o OUT --port P --bind IP EXTRA…` (progress every second), P a free
/// port on `ip`; returns the process and its listening address.
pub fn pixtorrent(
    name: &str,
    torrent: &Path,
    out: &Path,
    ip: Ipv4Addr,
    extra: &[&str],
) -> (seeders::Proc, SocketAddr) {
    let port = seeders::free_port_on(IpAddr::V4(ip));
    let mut cmd = px();
    cmd.arg("-t")
        .arg(torrent)
        .arg("-o")
        .arg(out)
        .args(["--port", &port.to_string()])
        .args(["--bind", &ip.to_string()])
        .args(extra)
        .env("PIXTORRENT_PROGRESS_SECS", "1");
    (
        seeders::Proc::spawn(name, cmd),
        SocketAddr::new(IpAddr::V4(ip), port),
    )
}

/// Waits for `px` to exit within `limit`; panics (with its last output) unless it exits 0. Returns
/// how long it took.
pub fn expect_success(px: &mut seeders::Proc, limit: Duration) -> Duration {
    let start = Instant::now();
    let status = px.wait_exit(limit);
    let took = start.elapsed();
    match status {
        None => panic!(
            "pixtorrent did not finish within {limit:?} (killed)\n{}",
            px.dump(30)
        ),
        Some(s) if !s.success() => {
            panic!("pixtorrent failed ({s}) after {took:?}\n{}", px.dump(30))
        }
        Some(_) => eprintln!("pixtorrent finished in {took:.1?}"),
    }
    took
}
