//! Magnet links (BEP 9) with real clients: a python3-libtorrent leecher given only a magnet link
//! fetches the metadata from a pixtorrent seeder over `ut_metadata`, then the data.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::netns::NetNs;
use common::payload::{assert_same_tree, Payload, SMALL, STANDARD};
use common::seeders::{Aria2Seeder, LtOptions, LtPeer, Proc, Transmission};
use common::{
    expect_success, payload_and_tracker, pixtorrent, tool, wait_for_seeders, Opentracker,
};

#[test]
fn libtorrent_fetches_the_metadata_from_a_pixtorrent_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, tracker)) = payload_and_tracker(dir.path(), STANDARD) else {
        return;
    };
    let (mut seeder, addr) = pixtorrent(
        "pixtorrent seeder",
        &payload.torrent,
        &payload.save_dir,
        Ipv4Addr::LOCALHOST,
        &["--seed", "--seed-time", "120", "-v"],
    );
    wait_for_seeders(&tracker.http, payload.info_hash, 1, Duration::from_secs(30));
    // No tracker in the link: the seeder is named by hand, so the metadata can only come from it.
    let magnet = format!("magnet:?xt=urn:btih:{}&dn=test", payload.info_hash);
    let out = dir.path().join("lt");
    std::fs::create_dir_all(&out).unwrap();
    let opts = LtOptions {
        seed: false,
        exit_when_done: true,
        wait_tracker: false,
        connect: vec![addr],
        magnet: Some(magnet),
        ..LtOptions::default()
    };
    let Some(mut leecher) = LtPeer::start(&payload.torrent, &out, &opts) else {
        return;
    };
    let done = leecher.wait_done(Duration::from_secs(120));
    let lines = leecher.proc.stdout();
    assert!(
        lines.iter().any(|l| l.starts_with("METADATA")),
        "libtorrent reports the metadata: {lines:?}"
    );
    eprintln!("libtorrent: {done}");
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    seeder.stop();
}

#[test]
fn pixtorrent_downloads_a_magnet_link_from_libtorrent_and_restarts_without_peers() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, tracker)) = payload_and_tracker(dir.path(), STANDARD) else {
        return;
    };
    let Some(mut seeder) = LtPeer::seed(&payload.torrent, &payload.save_dir) else {
        return;
    };
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&dn=IA_Item&tr={}",
        payload.info_hash,
        percent(&tracker.http)
    );
    let out = dir.path().join("px");
    // --info fetches the metadata and prints the usual report.
    let info = common::px()
        .args(["--info", &magnet, "--port", "0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    assert!(text.contains(&payload.info_hash.to_hex()), "{text}");
    assert!(text.contains("IA_Item/Content/IA_Item.mp4"), "{text}");
    // The download: metadata over ut_metadata from libtorrent, then the data.
    let (mut px, _) = pixtorrent(
        "pixtorrent magnet",
        Path::new(&magnet),
        &out,
        Ipv4Addr::LOCALHOST,
        &["-v"],
    );
    expect_success(&mut px, Duration::from_secs(120));
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    let log = px.stderr().join("\n");
    assert!(log.contains("fetching metadata"), "{log}");
    let saved = out.join("IA_Item.torrent");
    let meta = pixtorrent::metainfo::Metainfo::from_bytes(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(
        meta.info_hash, payload.info_hash,
        "the saved .torrent is the torrent"
    );
    // No peer, no tracker: the saved torrent and the data on disk are enough to finish again.
    seeder.stop();
    drop(tracker);
    let (mut again, _) = pixtorrent(
        "pixtorrent again",
        Path::new(&magnet),
        &out,
        Ipv4Addr::LOCALHOST,
        &[],
    );
    expect_success(&mut again, Duration::from_secs(60));
    let summary = again.stdout().join("\n");
    let pieces = payload.piece_count();
    assert!(
        summary.contains(&format!("pieces already on disk: {pieces}/{pieces}")),
        "{summary}"
    );
}

#[test]
fn a_magnet_with_nobody_to_ask_is_refused_at_once() {
    let out = common::px()
        .arg(format!("magnet:?xt=urn:btih:{}", "ab".repeat(20)))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no tracker (tr) and no peer (x.pe)"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Percent-encodes a URL for a magnet parameter.
fn percent(url: &str) -> String {
    url.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Downloads `magnet` into `out` with pixtorrent bound to `ip`; panics unless it completes with
/// the metadata fetched (the log says so) and `payload`'s files byte-identical.
fn magnet_download(payload: &Payload, magnet: &str, out: &Path, ip: Ipv4Addr) {
    let (mut px, _) = pixtorrent("pixtorrent magnet", Path::new(magnet), out, ip, &["-v"]);
    expect_success(&mut px, Duration::from_secs(180));
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    let log = px.stderr().join("\n");
    assert!(log.contains("fetching metadata"), "{log}");
}

#[test]
fn aria2_as_the_only_metadata_source() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, tracker)) = payload_and_tracker(dir.path(), SMALL) else {
        return;
    };
    let Some(aria2) =
        Aria2Seeder::start(&payload.torrent, &payload.save_dir, Ipv4Addr::LOCALHOST, 0)
    else {
        return;
    };
    wait_for_seeders(&tracker.http, payload.info_hash, 1, Duration::from_secs(60));
    // No tracker in the link: aria2, named by x.pe, is the only peer there is.
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&x.pe={}",
        payload.info_hash, aria2.addr
    );
    magnet_download(
        &payload,
        &magnet,
        &dir.path().join("px"),
        Ipv4Addr::LOCALHOST,
    );
}

#[test]
fn transmission_as_the_only_metadata_source() {
    let dir = tempfile::tempdir().unwrap();
    for t in ["transmission-daemon", "transmission-remote", "opentracker"] {
        if tool(t).is_none() {
            return;
        }
    }
    let Some(ns) = NetNs::create() else { return };
    let mut payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    let Some(tracker) = Opentracker::start_on(&[payload.info_hash], &[ns.host_ip]) else {
        return;
    };
    payload.set_announce(&tracker.http_on(ns.host_ip));
    let Some(transmission) = Transmission::seed(
        &ns,
        &payload.torrent,
        payload.info_hash,
        &payload.save_dir,
        0,
    ) else {
        return;
    };
    wait_for_seeders(&tracker.http, payload.info_hash, 1, Duration::from_secs(60));
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&x.pe={}",
        payload.info_hash, transmission.addr
    );
    // Transmission refuses loopback peers: pixtorrent comes from the host side of the veth.
    magnet_download(&payload, &magnet, &dir.path().join("px"), ns.host_ip);
    drop(transmission);
}

/// A hostile metadata peer (`tests/peers/bad_metadata.py`) in `mode`; returns it and its address.
fn bad_metadata_peer(mode: &str, size: usize, delay: f64) -> (Proc, std::net::SocketAddr) {
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(common::seeders::script("bad_metadata.py"))
        .args(["--mode", mode, "--size", &size.to_string()])
        .args(["--delay", &delay.to_string()])
        .args(["--parent-pid", &std::process::id().to_string()]);
    let mut proc = Proc::spawn("bad metadata peer", cmd);
    let line = proc
        .wait_line(Duration::from_secs(20), |l| l.starts_with("READY port="))
        .expect("bad metadata peer ready");
    let port: u16 = line
        .trim_start_matches("READY port=")
        .trim()
        .parse()
        .unwrap();
    (proc, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

/// VmHWM (peak resident set) of `pid` in kB.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn hostile_metadata_peers_next_to_an_honest_seeder() {
    const RSS_LIMIT_KB: u64 = 150 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, tracker)) = payload_and_tracker(dir.path(), STANDARD) else {
        return;
    };
    let info_len =
        pixtorrent::metainfo::Metainfo::from_bytes(&std::fs::read(&payload.torrent).unwrap())
            .unwrap()
            .info_bytes
            .len();
    let (_huge, huge_addr) = bad_metadata_peer("huge", info_len, 0.0);
    // The liar answers 2 s late, so the honest seeder (found through the tracker) has joined while
    // the liar holds the piece: once the liar is dropped, the seeder must be asked for it without
    // having said anything new (CI once failed here when that waited for the seeder to speak).
    let (garbage, garbage_addr) = bad_metadata_peer("garbage", info_len, 2.0);
    // The liars alone: both are dropped as metadata sources and the link fails with one error
    // line (no honest source to race them, so this part is deterministic).
    let liars_only = format!(
        "magnet:?xt=urn:btih:{}&x.pe={huge_addr}&x.pe={garbage_addr}",
        payload.info_hash
    );
    let (mut alone, _) = pixtorrent(
        "pixtorrent, liars only",
        Path::new(&liars_only),
        &dir.path().join("alone"),
        Ipv4Addr::LOCALHOST,
        &["-v"],
    );
    let status = alone.wait_exit(Duration::from_secs(60));
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{}", alone.dump(30));
    let log = alone.stderr().join("\n");
    for liar in [huge_addr, garbage_addr] {
        assert!(
            log.lines()
                .any(|l| l.contains("metadata source dropped")
                    && l.contains(&format!("peer={liar}"))),
            "liar {liar} dropped:\n{log}"
        );
    }
    assert!(
        log.contains("error: cannot get the torrent's metadata"),
        "{log}"
    );
    let Some(mut seeder) = LtPeer::seed(&payload.torrent, &payload.save_dir) else {
        return;
    };
    // The liars first in the link, the honest seeder only through the tracker: whichever order
    // the dials take, the download completes and memory stays bounded.
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&x.pe={huge_addr}&x.pe={garbage_addr}&tr={}",
        payload.info_hash,
        percent(&tracker.http)
    );
    let out = dir.path().join("px");
    let (mut px, _) = pixtorrent(
        "pixtorrent magnet",
        Path::new(&magnet),
        &out,
        Ipv4Addr::LOCALHOST,
        &["-v"],
    );
    let pid = px.pid();
    let mut peak = 0;
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = px.try_status() {
            break s;
        }
        peak = peak.max(peak_rss_kb(pid).unwrap_or(0));
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "did not finish\n{}",
            px.dump(30)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}\n{}", px.dump(30));
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    eprintln!("peak RSS {peak} kB");
    assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} kB");
    drop(garbage);
    seeder.stop();
}
