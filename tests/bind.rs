//! `--bind` covers every socket: in a network namespace of the test's own with two addresses (a
//! multi-homed host whose default source address is the first), pixtorrent bound to the second is
//! registered by opentracker at that address over HTTP and UDP, serves a libtorrent leecher, and
//! every socket it opens (listener, peer connections, UDP tracker socket, HTTP announces, web seed
//! requests) has that source address: seen by `ss` inside the namespace during the run, and by a
//! listener of the test's own that records who connects.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::netns::NetNs;
use common::payload::{assert_same_tree, Payload, SMALL};
use common::seeders::{free_port_on, LtOptions, LtPeer, Proc};
use common::{tool, Opentracker};
use pixtorrent::net::Bind;
use pixtorrent::tracker::{AnnounceRequest, Event, TrackerClient, TrackerConfig};
use pixtorrent::types::PeerId;

const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The local addresses of every TCP and UDP socket `pid` holds inside `ns`, from `ss`.
fn socket_addresses(ns: &NetNs, ss: &Path, pid: u32) -> Vec<(String, SocketAddr, String)> {
    let out = ns
        .command(ss)
        .args(["-H", "-t", "-u", "-a", "-n", "-p"])
        .output()
        .expect("run ss");
    let needle = format!("pid={pid},");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&needle))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local: SocketAddr = f.get(4)?.parse().ok()?;
            Some((f[0].to_string(), local, f.get(5)?.to_string()))
        })
        .collect()
}

/// Watches `pid`'s sockets every 100 ms until `done()`: the set of (kind, local, peer) seen.
fn watch_sockets(
    ns: &NetNs,
    pid: u32,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) -> BTreeSet<(String, SocketAddr, String)> {
    let ss = tool("ss").expect("ss (iproute2)");
    let mut seen = BTreeSet::new();
    let start = Instant::now();
    while start.elapsed() < limit && !done() {
        seen.extend(socket_addresses(ns, &ss, pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    seen
}

fn assert_all_from(seen: &BTreeSet<(String, SocketAddr, String)>, ip: Ipv4Addr) {
    assert!(!seen.is_empty(), "ss saw no socket of pixtorrent");
    for (kind, local, peer) in seen {
        assert_eq!(
            local.ip(),
            IpAddr::V4(ip),
            "{kind} socket {local} -> {peer} is not from --bind {ip}; all seen: {seen:#?}"
        );
    }
}

/// Announces as a fresh leecher from the host; the peers the tracker returns.
fn peers_at(url: &str, hash: pixtorrent::types::InfoHash, from: Bind) -> Vec<SocketAddr> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = TrackerClient::new(TrackerConfig {
        bind: from,
        udp_base_timeout: Duration::from_secs(2),
        udp_max_retries: 2,
        ..TrackerConfig::default()
    })
    .unwrap();
    let req = AnnounceRequest {
        info_hash: hash,
        peer_id: PeerId::generate(&mut rand::rng()),
        port: 9,
        uploaded: 0,
        downloaded: 0,
        left: 1,
        event: Event::Started,
        numwant: Some(50),
        key: 7,
        tracker_id: None,
    };
    let reply = rt.block_on(client.announce(url, &req));
    let peers = reply
        .unwrap_or_else(|e| panic!("announce to {url}: {e}"))
        .peers;
    let stop = AnnounceRequest {
        event: Event::Stopped,
        ..req
    };
    let _ = rt.block_on(client.announce(url, &stop));
    peers
}

struct Setup {
    ns: NetNs,
    bound: Ipv4Addr,
    tracker: Opentracker,
    http: String,
    udp: String,
    payload: Payload,
    _dir: tempfile::TempDir,
}

fn setup() -> Option<Setup> {
    let ns = NetNs::create()?;
    tool("ss")?;
    let bound = ns.add_ns_address();
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    let tracker = Opentracker::start_on(&[payload.info_hash], &[ns.host_ip])?;
    let http = tracker.http_on(ns.host_ip);
    let udp = format!(
        "udp://{}:{}/announce",
        ns.host_ip,
        tracker
            .udp
            .rsplit(':')
            .next()?
            .trim_end_matches("/announce")
    );
    Some(Setup {
        ns,
        bound,
        tracker,
        http,
        udp,
        payload,
        _dir: dir,
    })
}

/// The DHT off and the public routers forbidden, as `common::px` does for commands run directly.
fn no_dht(cmd: &mut std::process::Command) {
    cmd.env("PIXTORRENT_NO_DHT", "1")
        .env("PIXTORRENT_FORBID_PUBLIC_DHT", "1");
}

/// pixtorrent inside the namespace, bound to `bound`.
fn pixtorrent_in(s: &Setup, torrent: &Path, out: &Path, port: u16, extra: &[&str]) -> Proc {
    let mut cmd = s.ns.command(Path::new(env!("CARGO_BIN_EXE_pixtorrent")));
    no_dht(&mut cmd);
    cmd.arg("-t")
        .arg(torrent)
        .arg("-o")
        .arg(out)
        .args(["--port", &port.to_string(), "--bind", &s.bound.to_string()])
        .args(extra)
        .arg("-v")
        .env("PIXTORRENT_PROGRESS_SECS", "1");
    Proc::spawn("pixtorrent (bound)", cmd)
}

#[test]
fn a_bound_seeder_is_registered_at_its_address_and_serves_libtorrent() {
    let Some(s) = setup() else { return };
    let torrent = s.payload.torrent_with_tiers(
        &s.payload.save_dir.join("../tiers.torrent"),
        &[&s.http, &s.udp],
        &[],
    );
    let port = 17001;
    let seeder = pixtorrent_in(
        &s,
        &torrent,
        &s.payload.save_dir,
        port,
        &["--seed", "--seed-time", "120"],
    );
    let pid = seeder.pid();
    common::wait_for_seeders(&s.http, s.payload.info_hash, 1, Duration::from_secs(30));
    let want = SocketAddr::new(IpAddr::V4(s.bound), port);
    let host = Bind::new(IpAddr::V4(s.ns.host_ip2), None);
    for url in [&s.http, &s.udp] {
        let peers = peers_at(url, s.payload.info_hash, host.clone());
        assert!(
            peers.contains(&want),
            "{url} lists {peers:?}, not the bound {want}\n{}",
            seeder.dump(20)
        );
        assert!(
            !peers.iter().any(|p| p.ip() == IpAddr::V4(s.ns.ns_ip)),
            "{url} registered the default address: {peers:?}"
        );
    }
    // A libtorrent leecher on the host finds the seeder at the registered address.
    let out = s.payload.save_dir.join("../lt-leech");
    std::fs::create_dir_all(&out).unwrap();
    let opts = LtOptions {
        seed: false,
        exit_when_done: true,
        ip: IpAddr::V4(s.ns.host_ip),
        ..LtOptions::default()
    };
    let lt_torrent = s
        .payload
        .torrent_with(&s.payload.save_dir.join("../http.torrent"), &s.http);
    let Some(mut leecher) = LtPeer::start(&lt_torrent, &out, &opts) else {
        return;
    };
    let finished = Arc::new(AtomicBool::new(false));
    let seen = {
        let flag = finished.clone();
        let waiter = std::thread::spawn(move || {
            let line = leecher.wait_done(RUN_LIMIT);
            flag.store(true, Ordering::SeqCst);
            (leecher, line)
        });
        let seen = watch_sockets(&s.ns, pid, RUN_LIMIT, || finished.load(Ordering::SeqCst));
        let (mut leecher, line) = waiter.join().unwrap();
        eprintln!("libtorrent: {line}");
        leecher.stop();
        seen
    };
    assert_same_tree(&s.payload.root(), &out.join(s.payload.name()));
    eprintln!("sockets seen: {seen:#?}");
    assert_all_from(&seen, s.bound);
    let udp_port = s
        .udp
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/announce");
    assert!(
        seen.iter()
            .any(|(k, _, peer)| k == "udp" && peer.ends_with(&format!(":{udp_port}"))),
        "no UDP tracker socket seen: {seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|(k, local, _)| k == "tcp" && local.port() == port),
        "the listener was not seen: {seen:#?}"
    );
    drop(seeder);
    drop(s.tracker);
}

/// A TCP listener that records who connects and hangs up at once: a peer and a web seed that
/// never deliver, only there to show the source address of pixtorrent's connections.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    fn start(ip: Ipv4Addr) -> Recorder {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen, stop) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(AtomicBool::new(false)),
        );
        let (s, f) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !f.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut stream, from)) => {
                        s.lock().unwrap().push(from);
                        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                        let _ = stream.read(&mut [0u8; 512]);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Recorder {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_bound_leecher_uses_its_address_for_peers_trackers_and_web_seeds() {
    let Some(s) = setup() else { return };
    // The real source: a libtorrent seeder on the host, 1 MB/s so the download lasts seconds.
    let lt_torrent = s
        .payload
        .torrent_with(&s.payload.save_dir.join("../http.torrent"), &s.http);
    let opts = LtOptions {
        ip: IpAddr::V4(s.ns.host_ip),
        upload_limit: 1_000_000,
        ..LtOptions::default()
    };
    let Some(mut seed) = LtPeer::start(&lt_torrent, &s.payload.save_dir, &opts) else {
        return;
    };
    // The recorder is announced as a second peer (from host_ip2) and named as the web seed.
    let recorder = Recorder::start(s.ns.host_ip2);
    let client_rt = tokio::runtime::Runtime::new().unwrap();
    let client = TrackerClient::new(TrackerConfig {
        bind: Bind::new(IpAddr::V4(s.ns.host_ip2), None),
        ..TrackerConfig::default()
    })
    .unwrap();
    let fake = AnnounceRequest {
        info_hash: s.payload.info_hash,
        peer_id: PeerId::generate(&mut rand::rng()),
        port: recorder.addr.port(),
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: Event::Started,
        numwant: Some(0),
        key: 1,
        tracker_id: None,
    };
    client_rt.block_on(client.announce(&s.http, &fake)).unwrap();
    let web = format!("http://{}/", recorder.addr);
    let torrent = s.payload.torrent_with_tiers(
        &s.payload.save_dir.join("../leech.torrent"),
        &[&s.http, &s.udp],
        &[&web],
    );
    let out = s.payload.save_dir.join("../px-leech");
    let port = free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut px = pixtorrent_in(&s, &torrent, &out, port, &[]);
    let pid = px.pid();
    let mut status = None;
    let seen = watch_sockets(&s.ns, pid, RUN_LIMIT, || {
        status = px.try_status();
        status.is_some()
    });
    assert!(
        status.is_some_and(|s| s.success()),
        "pixtorrent: {status:?}\n{}",
        px.dump(30)
    );
    assert_same_tree(&s.payload.root(), &out.join(s.payload.name()));
    eprintln!("sockets seen: {seen:#?}");
    assert_all_from(&seen, s.bound);
    assert!(
        seen.iter()
            .any(|(k, _, peer)| k == "tcp" && peer.ends_with(&format!(":{}", seed.addr.port()))),
        "the connection to the libtorrent seeder was not seen: {seen:#?}"
    );
    let from = recorder.seen.lock().unwrap().clone();
    assert!(
        from.len() >= 2,
        "the recorder saw {from:?}: expected the peer dial and a web seed request"
    );
    assert!(
        from.iter().all(|a| a.ip() == IpAddr::V4(s.bound)),
        "connections to the recorder came from {from:?}, not {}",
        s.bound
    );
    seed.stop();
}

#[test]
fn an_interface_binding_never_takes_another_route() {
    let Some(s) = setup() else { return };
    let torrent = s.payload.torrent_with_tiers(
        &s.payload.save_dir.join("../tiers.torrent"),
        &[&s.http, &s.udp],
        &[],
    );
    let announce = |interface: &str| {
        let mut cmd = s.ns.command(Path::new(env!("CARGO_BIN_EXE_pixtorrent")));
        no_dht(&mut cmd);
        cmd.arg("--announce-only").arg(&torrent).args([
            "--tracker-timeout",
            "3",
            "--interface",
            interface,
        ]);
        let out = cmd.output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // Through the veth, the only route to the tracker: both trackers answer.
    let (status, text) = announce(&s.ns.ns_if);
    assert!(status.success(), "{text}");
    assert!(text.contains("2 of 2 trackers answered"), "{text}");
    // Tied to `lo`, which has no route to the host: nothing answers, nothing leaks out the veth.
    let (status, text) = announce("lo");
    assert!(!status.success(), "{text}");
    assert!(text.contains("0 of 2 trackers answered"), "{text}");
    // An interface that does not exist is one clear error.
    let out =
        s.ns.command(Path::new(env!("CARGO_BIN_EXE_pixtorrent")))
            .env("PIXTORRENT_NO_DHT", "1")
            .env("PIXTORRENT_FORBID_PUBLIC_DHT", "1")
            .arg(&torrent)
            .arg("-o")
            .arg(s.payload.save_dir.join("../nosuchif"))
            .args(["--interface", "nosuchif0"])
            .output()
            .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nosuchif0"), "{err}");
}
