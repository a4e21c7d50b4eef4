//! `pixtorrent-tracker --redis-cluster` against a real Redis Cluster each test starts on 127.0.0.1
//! (3 primaries, 3 replicas). Two tracker processes serve one swarm to real clients (a libtorrent
//! seeder announcing to one, an aria2c leecher to the other), byte-identical, exact scrape counts
//! on both. `kill -9` of one primary under a steady load of announces: every
//! reply comes within 1.5 s; replies during the failover are bencoded failure reasons and only
//! then; the same tracker process recovers with no restart; `/health` says 503 meanwhile and 200
//! after; no peer is lost from the swarms whose slots stayed on live primaries, and the totals are
//! exact afterwards.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::payload::{assert_same_tree, Payload, SMALL};
use common::redis_cluster::RedisCluster;
use common::seeders::{aria2_leecher, LtOptions, LtPeer};
use common::servers::TrackerProc;
use common::{scrape, tool};
use pixtorrent::types::InfoHash;

const SWARMS: u8 = 24;
const PEERS: u8 = 3;
/// What a client may wait for any reply, failure or not.
const REPLY_BOUND: Duration = Duration::from_millis(1500);
/// Bounds the whole failover (detection, election, the client finding the new primary).
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);

/// One HTTP/1.1 request with `Connection: close`: status line and body.
fn get(addr: SocketAddr, path: &str) -> Option<(String, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    Some((head.lines().next()?.to_string(), buf[split + 4..].to_vec()))
}

fn hash(n: u8) -> [u8; 20] {
    let mut h = [0x5a; 20];
    h[0] = n;
    h[19] = n.wrapping_mul(7);
    h
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn escaped(b: &[u8]) -> String {
    b.iter().map(|x| format!("%{x:02X}")).collect()
}

/// An announce of peer `p` in swarm `n`: `Ok(body)`, `Err(body)` for a failure reason.
fn announce(addr: SocketAddr, n: u8, p: u8) -> Result<Vec<u8>, Vec<u8>> {
    let mut id = [b'-'; 20];
    id[0] = n;
    id[1] = p;
    let path = format!(
        "/announce?info_hash={}&peer_id={}&port={}&left=0&numwant=0&compact=1",
        escaped(&hash(n)),
        escaped(&id),
        10_000 + u16::from(n) * 10 + u16::from(p)
    );
    let (status, body) = get(addr, &path).ok_or_else(Vec::new)?;
    assert!(status.contains(" 200 "), "{status}");
    if body.windows(14).any(|w| w == b"failure reason") {
        Err(body)
    } else {
        Ok(body)
    }
}

fn stats(addr: SocketAddr) -> serde_json::Value {
    let (_, body) = get(addr, "/stats").expect("/stats");
    serde_json::from_slice(&body).expect("/stats is JSON")
}

/// Waits (bounded) until `announce`'s scrape says `want` (seeders, leechers) for `hash`.
fn wait_scrape(announce: &str, hash: InfoHash, want: (i64, i64), when: &str) {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < Duration::from_secs(30) {
        last = scrape(announce, hash);
        if last == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{when}: {announce} says {last:?}, wanted {want:?}");
}

#[test]
fn two_trackers_on_the_cluster_serve_libtorrent_to_aria2() {
    if tool("aria2c").is_none() {
        return;
    }
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let nodes = cluster.urls().join(",");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_pixtorrent-tracker"));
    let first = TrackerProc::start(bin, &["--redis-cluster", &nodes]);
    let second = TrackerProc::start(bin, &["--redis-cluster", &nodes]);
    let (a, b) = (first.announce_url(), second.announce_url());
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, &a);
    let hash = payload.info_hash;
    let Some(mut seeder) =
        LtPeer::start(&payload.torrent, &payload.save_dir, &LtOptions::default())
    else {
        return;
    };
    wait_scrape(&a, hash, (1, 0), "libtorrent seeding (first)");
    wait_scrape(&b, hash, (1, 0), "libtorrent seeding (second)");
    // The leecher knows only the second tracker: it finds the seeder through the cluster.
    let torrent = payload.torrent_with(&dir.path().join("second.torrent"), &b);
    let out = dir.path().join("aria2");
    let opts = ["--file-allocation=none", "--seed-time=0.05"];
    let Some(mut aria2) = aria2_leecher(&torrent, &out, &opts) else {
        return;
    };
    let status = aria2.wait_exit(Duration::from_secs(90));
    assert!(
        status.is_some_and(|s| s.success()),
        "aria2c: {status:?}\n{}",
        aria2.dump(20)
    );
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    // aria2c completed and stopped: one seeder left, on both trackers.
    wait_scrape(&a, hash, (1, 0), "aria2c gone (first)");
    wait_scrape(&b, hash, (1, 0), "aria2c gone (second)");
    let status = seeder.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "libtorrent: {status:?}"
    );
    wait_scrape(&b, hash, (0, 0), "libtorrent stopped (second)");
    wait_scrape(&a, hash, (0, 0), "libtorrent stopped (first)");
    drop((first, second, cluster));
}

#[test]
fn a_primary_killed_mid_load_fails_cleanly_then_recovers() {
    let Some(mut cluster) = RedisCluster::start() else {
        return;
    };
    let nodes = cluster.urls().join(",");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_pixtorrent-tracker"));
    let tracker = TrackerProc::start(bin, &["--redis-cluster", &nodes]);
    let addr = tracker.http;
    for n in 0..SWARMS {
        for p in 0..PEERS {
            announce(addr, n, p).expect("announce before the failover");
        }
    }
    // The primary of swarm 0's slot dies; the swarms on the other primaries must keep every peer.
    let victim = cluster.primary_of(&hex(&hash(0)));
    let safe: Vec<u8> = (0..SWARMS)
        .filter(|&n| cluster.primary_of(&hex(&hash(n))) != victim)
        .collect();
    assert!(!safe.is_empty() && safe.len() < usize::from(SWARMS));
    cluster.kill_node(victim);
    let killed = Instant::now();

    // Load: every peer re-announces in turn until a full round succeeds after the failures.
    let (mut failures, mut health_down, mut slowest) = (0u32, false, Duration::ZERO);
    let mut last_failure = None;
    loop {
        assert!(
            killed.elapsed() < RECOVERY_LIMIT,
            "no recovery: {failures} failures"
        );
        let mut round_ok = true;
        for n in 0..SWARMS {
            for p in 0..PEERS {
                let t = Instant::now();
                let r = announce(addr, n, p);
                slowest = slowest.max(t.elapsed());
                if let Err(body) = r {
                    assert!(!body.is_empty(), "no reply at all");
                    if failures == 0 {
                        eprintln!("first failure: {}", String::from_utf8_lossy(&body));
                    }
                    failures += 1;
                    round_ok = false;
                    last_failure = Some(killed.elapsed());
                }
            }
            let (status, _) = get(addr, "/health").expect("/health");
            health_down |= status.contains(" 503 ");
        }
        if round_ok && failures > 0 {
            break;
        }
    }
    eprintln!(
        "{failures} failure replies, the last {last_failure:?} after the kill; slowest reply \
         {slowest:?}; /health went down: {health_down}"
    );
    assert!(slowest < REPLY_BOUND, "a reply took {slowest:?}");
    assert!(health_down, "/health never reported the failover");
    // Recovered: healthy, several full rounds without a failure.
    assert!(cluster.wait_ok(Duration::from_secs(10)));
    for _ in 0..3 {
        for n in 0..SWARMS {
            for p in 0..PEERS {
                announce(addr, n, p).expect("announce after the failover");
            }
        }
    }
    let (status, body) = get(addr, "/health").unwrap();
    assert!(status.contains(" 200 "), "{status} {body:?}");
    for &n in &safe {
        let counts = scrape(&tracker.announce_url(), InfoHash(hash(n)));
        assert_eq!(counts, Some((i64::from(PEERS), 0)), "swarm {n}");
    }
    let s = stats(addr);
    assert_eq!(s["torrents"], u64::from(SWARMS), "{s}");
    assert_eq!(s["seeders"], u64::from(SWARMS) * u64::from(PEERS), "{s}");
    assert_eq!(s["leechers"], 0, "{s}");
    drop(tracker);
    drop(cluster);
}
