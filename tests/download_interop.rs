//! The `pixtorrent` binary downloads an Internet-Archive-shaped payload from real clients — libtorrent,
//! aria2, Transmission (in a network namespace of the test's own) — found through a real opentracker;
//! bans a corrupting seeder; resumes after `kill -9`; completes with every piece strategy. The
//! `harness_*` tests check the same set-ups with the other clients as leechers, so a failure there is
//! the harness's, not pixtorrent's.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use common::netns::NetNs;
use common::payload::{assert_same_tree, Payload, SMALL, STANDARD};
use common::seeders::{
    aria2_leecher, Aria2Seeder, BadSeeder, LtOptions, LtPeer, Proc, Transmission,
};
use common::{payload_and_tracker, pixtorrent, tool, wait_for_seeders, Opentracker};

/// A download of the standard payload on loopback takes seconds; this bounds a hung one.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a seeder may take to show up at the tracker.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(60);
const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// What pixtorrent's closing summary says.
#[derive(Debug, Default)]
struct Summary {
    /// `pieces already on disk: K/N`
    on_disk: (u64, u64),
    /// `fetched: N bytes`
    fetched: u64,
    /// `peer ADDR (CLIENT): N bytes`
    peers: Vec<(String, String, u64)>,
    /// `banned ADDR: REASON`
    banned: Vec<(String, String)>,
}

impl Summary {
    fn parse(stdout: &[String]) -> Summary {
        let mut s = Summary::default();
        let (mut saw_disk, mut saw_fetched) = (false, false);
        for line in stdout.iter().map(|l| l.trim()) {
            if let Some(rest) = line.strip_prefix("pieces already on disk: ") {
                let (k, n) = rest.split_once('/').expect("K/N");
                s.on_disk = (number(k), number(n));
                saw_disk = true;
            } else if let Some(rest) = line.strip_prefix("fetched: ") {
                s.fetched = number(rest);
                saw_fetched = true;
            } else if let Some(rest) = line.strip_prefix("peer ") {
                let (addr, rest) = rest.split_once(" (").expect("peer ADDR (CLIENT): N bytes");
                let (client, bytes) = rest.rsplit_once("): ").expect("peer line");
                s.peers
                    .push((addr.to_string(), client.to_string(), number(bytes)));
            } else if let Some(rest) = line.strip_prefix("banned ") {
                let (addr, reason) = rest.split_once(": ").expect("banned ADDR: REASON");
                s.banned.push((addr.to_string(), reason.to_string()));
            }
        }
        assert!(
            saw_disk && saw_fetched,
            "no `pieces already on disk:`/`fetched:` lines in pixtorrent's summary:\n{}",
            stdout.join("\n")
        );
        s
    }

    /// Bytes pixtorrent reports from peers at `ip`, whatever the port: a seeder that dialled
    /// pixtorrent shows up with its ephemeral port, not its listening one.
    fn bytes_from_ip(&self, ip: IpAddr) -> u64 {
        let prefix = format!("{ip}:");
        let peers = self.peers.iter().filter(|p| p.0.starts_with(&prefix));
        peers.map(|p| p.2).sum()
    }
}

/// Waits for pixtorrent to exit 0 within [`DOWNLOAD_TIMEOUT`] and parses its summary.
fn finish(mut px: Proc) -> Summary {
    common::expect_success(&mut px, DOWNLOAD_TIMEOUT);
    let summary = Summary::parse(&px.stdout());
    eprintln!("summary: {summary:?}");
    summary
}

/// Downloads with pixtorrent and checks the files; returns the summary.
fn download(payload: &Payload, out: &Path, ip: Ipv4Addr, extra: &[&str]) -> Summary {
    let summary = finish(pixtorrent("pixtorrent", &payload.torrent, out, ip, extra).0);
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    assert_eq!(summary.on_disk.1, payload.piece_count(), "piece count");
    summary
}

#[test]
fn libtorrent_seeder_to_pixtorrent() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, _tracker)) = payload_and_tracker(dir.path(), STANDARD) else {
        return;
    };
    let Some(seeder) = LtPeer::seed(&payload.torrent, &payload.save_dir) else {
        return;
    };
    let summary = download(&payload, &dir.path().join("out"), LOCALHOST, &[]);
    assert!(
        summary.bytes_from_ip(seeder.addr.ip()) > 0,
        "no bytes from {}",
        seeder.addr
    );
    assert!(
        summary.fetched >= payload.total,
        "fetched {}",
        summary.fetched
    );
}

#[test]
fn aria2_and_transmission_seeders_to_pixtorrent() {
    let dir = tempfile::tempdir().unwrap();
    let Some(setup) = NamespaceSwarm::start(dir.path(), STANDARD) else {
        return;
    };
    let out = dir.path().join("out");
    let summary = download(&setup.payload, &out, setup.ns.host_ip, &[]);
    for (who, addr) in [
        ("aria2", setup.aria2.addr),
        ("Transmission", setup.transmission.addr),
    ] {
        assert!(
            summary.bytes_from_ip(addr.ip()) > 0,
            "{who} at {addr} sent nothing: {summary:?}"
        );
    }
}

#[test]
fn corrupting_seeder_is_banned() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, tracker)) = payload_and_tracker(dir.path(), STANDARD) else {
        return;
    };
    let Some(bad) = BadSeeder::start(&payload.torrent, &payload.save_dir, 4) else {
        return;
    };
    // The good seeder is slowed down so that the bad one is asked for plenty of pieces.
    let opts = LtOptions {
        upload_limit: 8_000_000,
        ..LtOptions::default()
    };
    let Some(good) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    wait_for_seeders(&tracker.http, payload.info_hash, 2, ANNOUNCE_TIMEOUT);
    let summary = download(&payload, &dir.path().join("out"), LOCALHOST, &[]);
    let bad_addr = bad.addr.to_string();
    assert!(
        summary.banned.iter().any(|b| b.0 == bad_addr),
        "the corrupting seeder {bad_addr} was not banned: {summary:?}"
    );
    assert!(
        summary.banned.iter().all(|b| b.0 == bad_addr),
        "a peer other than the corrupting seeder was banned (the good one is {}): {summary:?}",
        good.addr
    );
    // A banned peer must not be dialled again (two connections leave room for one lost before the ban).
    let dials = bad.handshakes_from("-PX");
    assert!(
        dials <= 2,
        "pixtorrent connected to the corrupting seeder {dials} times\n{}",
        bad.proc.dump(40)
    );
}

#[test]
fn kill9_then_resume_fetches_only_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, _tracker)) = payload_and_tracker(dir.path(), STANDARD) else {
        return;
    };
    let opts = LtOptions {
        upload_limit: 8_000_000,
        ..LtOptions::default()
    };
    let Some(mut seeder) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    let out = dir.path().join("out");
    let mut first = pixtorrent("pixtorrent", &payload.torrent, &out, LOCALHOST, &[]).0;
    let start = Instant::now();
    let mut progress = 0.0;
    while progress < 40.0 {
        if let Some(status) = first.try_status() {
            panic!(
                "pixtorrent exited ({status}) at {progress}% before it could be killed\n{}",
                first.dump(20)
            );
        }
        assert!(
            start.elapsed() < DOWNLOAD_TIMEOUT,
            "pixtorrent did not report 40% progress within {DOWNLOAD_TIMEOUT:?}\n{}",
            first.dump(20)
        );
        std::thread::sleep(Duration::from_millis(50));
        progress = first
            .stderr()
            .iter()
            .filter_map(|l| parse_progress(l))
            .fold(progress, f64::max);
    }
    first.kill();
    eprintln!(
        "killed pixtorrent at {progress}% after {:.1?}",
        start.elapsed()
    );
    drop(first);
    seeder.unlimit();

    let summary = download(&payload, &out, LOCALHOST, &[]);
    let (on_disk, pieces) = summary.on_disk;
    assert!(
        on_disk >= 1,
        "the second run found nothing on disk: {summary:?}"
    );
    let peers = summary.peers.len().max(1) as u64;
    let bound = (pieces - on_disk + peers) * u64::from(payload.piece_length);
    assert!(
        summary.fetched <= bound,
        "fetched {} bytes, more than (missing {} + peers {peers}) pieces = {bound}",
        summary.fetched,
        pieces - on_disk
    );
}

#[test]
fn each_strategy_completes() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, _tracker)) = payload_and_tracker(dir.path(), SMALL) else {
        return;
    };
    let Some(seeder) = LtPeer::seed(&payload.torrent, &payload.save_dir) else {
        return;
    };
    for strategy in ["sequential", "random", "rarest"] {
        let out = dir.path().join(format!("out-{strategy}"));
        let summary = download(&payload, &out, LOCALHOST, &["--strategy", strategy]);
        assert!(
            summary.bytes_from_ip(seeder.addr.ip()) > 0,
            "{strategy}: nothing from the seeder: {summary:?}"
        );
    }
}

/// The decimal number `text` starts with (what follows it, like ` bytes (61 MiB…)`, is ignored).
fn number(text: &str) -> u64 {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number at the start of {text:?}"))
}

/// The percentage in a `progress: 12.3% …` line.
fn parse_progress(line: &str) -> Option<f64> {
    let (pct, _) = line.strip_prefix("progress: ")?.split_once("% ")?;
    pct.parse().ok()
}

/// A namespace with Transmission seeding inside, aria2 seeding on the host side of the veth (its second
/// address), and an opentracker both can reach at the first host-side address, where the torrent
/// announces and the leecher binds.
struct NamespaceSwarm {
    // Fields drop in order: the seeders, then the tracker, then the namespace.
    transmission: Transmission,
    aria2: Aria2Seeder,
    _tracker: Opentracker,
    payload: Payload,
    ns: NetNs,
}

impl NamespaceSwarm {
    fn start(dir: &Path, size: u64) -> Option<NamespaceSwarm> {
        // Check every tool first, so that nothing is half set up when one is missing.
        for t in [
            "aria2c",
            "transmission-daemon",
            "transmission-remote",
            "opentracker",
        ] {
            tool(t)?;
        }
        let ns = NetNs::create()?;
        let mut payload = Payload::generate(dir, size, "http://127.0.0.1:9/announce");
        let tracker = Opentracker::start_on(&[payload.info_hash], &[ns.host_ip, ns.host_ip2])?;
        let url = tracker.http_on(ns.host_ip);
        payload.set_announce(&url);
        // Transmission 3.00 tells peers apart by IP alone and takes every peer the tracker names in a
        // swarm of seeders for a seeder: were aria2 recorded at the leecher's address, Transmission
        // would drop the leecher as "another seed". A host process announcing to a host address is
        // recorded at that address, so aria2 gets its own address and a torrent announcing there.
        let aria2_torrent =
            payload.torrent_with(&dir.join("aria2.torrent"), &tracker.http_on(ns.host_ip2));
        // Transmission unchokes a new peer at its next rechoke, up to 10 s later: aria2 is slowed down
        // so that the download lasts longer than that (about 16 s alone), and Transmission so that it
        // cannot take it all (aria2 limit in bytes/s, Transmission's in kB/s).
        let aria2_limit = (size / 16).max(250_000);
        let aria2 =
            Aria2Seeder::start(&aria2_torrent, &payload.save_dir, ns.host_ip2, aria2_limit)?;
        wait_for_seeders(&url, payload.info_hash, 1, ANNOUNCE_TIMEOUT);
        let transmission = Transmission::seed(
            &ns,
            &payload.torrent,
            payload.info_hash,
            &payload.save_dir,
            6_000,
        )?;
        // The second seeder at the tracker is Transmission: the namespace reaches the host side.
        wait_for_seeders(&url, payload.info_hash, 2, ANNOUNCE_TIMEOUT);
        Some(NamespaceSwarm {
            transmission,
            aria2,
            _tracker: tracker,
            payload,
            ns,
        })
    }
}

#[test]
fn harness_libtorrent_seeder_to_aria2_leecher() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, _tracker)) = payload_and_tracker(dir.path(), SMALL) else {
        return;
    };
    let Some(_seeder) = LtPeer::seed(&payload.torrent, &payload.save_dir) else {
        return;
    };
    let out = dir.path().join("out");
    let Some(mut leecher) = aria2_leecher(&payload.torrent, &out, &[]) else {
        return;
    };
    let status = leecher.wait_exit(DOWNLOAD_TIMEOUT);
    assert!(
        status.is_some_and(|s| s.success()),
        "aria2c: {status:?}\n{}",
        leecher.dump(20)
    );
    assert_same_tree(&payload.root(), &out.join(payload.name()));
}

/// A libtorrent leecher on `ip` until `DONE`; returns its `PEER` lines as (address, blocks received).
fn libtorrent_leech(payload: &Payload, out: &Path, ip: Ipv4Addr) -> Option<Vec<(String, u64)>> {
    let opts = LtOptions {
        seed: false,
        ip: IpAddr::V4(ip),
        ..LtOptions::default()
    };
    let mut leecher = LtPeer::start(&payload.torrent, out, &opts)?;
    leecher.wait_done(DOWNLOAD_TIMEOUT);
    leecher.stop();
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    let peers = leecher
        .proc
        .stdout()
        .iter()
        .filter_map(|l| {
            let mut words = l.strip_prefix("PEER ")?.split(' ');
            let addr = words.next()?.to_string();
            let down = words
                .find_map(|w| w.strip_prefix("blocks="))?
                .parse()
                .ok()?;
            Some((addr, down))
        })
        .collect();
    Some(peers)
}

#[test]
fn harness_namespace_seeders_to_libtorrent_leecher() {
    let dir = tempfile::tempdir().unwrap();
    let Some(setup) = NamespaceSwarm::start(dir.path(), SMALL) else {
        return;
    };
    let out = dir.path().join("out");
    let Some(peers) = libtorrent_leech(&setup.payload, &out, setup.ns.host_ip) else {
        return;
    };
    eprintln!("libtorrent got: {peers:?}");
    for addr in [setup.aria2.addr, setup.transmission.addr] {
        // By IP: a seeder that dialled the leecher shows up with an ephemeral port.
        let prefix = format!("{}:", addr.ip());
        let from = peers.iter().filter(|p| p.0.starts_with(&prefix));
        let got: u64 = from.map(|p| p.1).sum();
        assert!(got > 0, "nothing from {addr}: {peers:?}");
    }
}

#[test]
fn harness_corrupting_seeder_fails_libtorrent_hash_checks() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, tracker)) = payload_and_tracker(dir.path(), SMALL) else {
        return;
    };
    let Some(bad) = BadSeeder::start(&payload.torrent, &payload.save_dir, 4) else {
        return;
    };
    let opts = LtOptions {
        upload_limit: 2_000_000,
        ..LtOptions::default()
    };
    let Some(_good) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    wait_for_seeders(&tracker.http, payload.info_hash, 2, ANNOUNCE_TIMEOUT);
    let out = dir.path().join("out");
    let opts = LtOptions {
        seed: false,
        ..LtOptions::default()
    };
    let Some(mut leecher) = LtPeer::start(&payload.torrent, &out, &opts) else {
        return;
    };
    leecher.wait_done(DOWNLOAD_TIMEOUT);
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    let fails = leecher
        .proc
        .stdout()
        .iter()
        .filter(|l| l.starts_with("HASHFAIL "))
        .count();
    let served = bad
        .proc
        .stdout()
        .iter()
        .filter(|l| l.contains("corrupt=1"))
        .count();
    assert!(
        fails > 0 && served > 0,
        "expected hash failures: {fails} reported, {served} corrupt pieces served"
    );
}
