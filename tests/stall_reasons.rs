//! Why a download is stuck, said plainly. No network at all: a torrent whose trackers (HTTP and UDP)
//! and web seeds are `.invalid` names (RFC 6761: they never resolve) says so on its progress lines
//! after 10 s and ends with status 1 within 90 s, one line per source with its last error, instead
//! of waiting out the mirrors' backoff for minutes. A seeder that never unchokes us: the progress
//! line says the peer is choking us.

mod common;

use std::time::{Duration, Instant};

use common::payload::{Payload, SMALL};
use common::seeders::{LtOptions, LtPeer};

#[test]
fn a_torrent_with_only_unresolvable_sources_fails_within_90_s_naming_each() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, "http://tracker.invalid/announce");
    let torrent = payload.torrent_with_tiers(
        &dir.path().join("nowhere.torrent"),
        &[
            "http://tracker.invalid/announce",
            "udp://udp-tracker.invalid:6969/announce",
        ],
        &["http://mirror-a.invalid/files/", "http://mirror-b.invalid/"],
    );
    let start = Instant::now();
    let (mut px, _) = common::pixtorrent(
        "pixtorrent",
        &torrent,
        &dir.path().join("out"),
        std::net::Ipv4Addr::LOCALHOST,
        &[],
    );
    let status = px.wait_exit(Duration::from_secs(90));
    let took = start.elapsed();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "after {took:.0?}\n{}",
        px.dump(30)
    );
    let err = px.stderr().join("\n");
    eprintln!("gave up after {took:.1?}:\n{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: ") && l.contains("no source answered in 60 s")),
        "{err}"
    );
    let stalled =
        "(stalled: 2 trackers failing (name not resolved); 2 web seeds failing (name not \
                   resolved); no peers)";
    assert!(
        err.lines()
            .any(|l| l.starts_with("progress: ") && l.ends_with(stalled)),
        "no progress line ends with {stalled}:\n{err}"
    );
    for source in [
        "tracker http://tracker.invalid/announce: ",
        "tracker udp://udp-tracker.invalid:6969/announce: ",
        "web seed http://mirror-a.invalid/files/: ",
        "web seed http://mirror-b.invalid/: ",
    ] {
        let lines: Vec<&str> = err.lines().filter(|l| l.contains(source)).collect();
        assert_eq!(lines.len(), 1, "one line for {source}:\n{err}");
        assert!(
            lines[0]
                .trim_start()
                .starts_with(source.split(' ').next().unwrap_or("")),
            "a line of its own: {}",
            lines[0]
        );
    }
}

#[test]
fn a_seeder_that_never_unchokes_us_is_named_as_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    let opts = LtOptions {
        wait_tracker: false,
        unchoke_slots: Some(0),
        ..LtOptions::default()
    };
    let Some(mut seeder) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    let peer = seeder.addr.to_string();
    let (mut px, _) = common::pixtorrent(
        "pixtorrent",
        &payload.torrent,
        &dir.path().join("out"),
        std::net::Ipv4Addr::LOCALHOST,
        &["--peer", &peer],
    );
    let start = Instant::now();
    let said = loop {
        let found = px.stderr().into_iter().find(|l| l.contains("(stalled: "));
        if let Some(line) = found {
            break line;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "no stalled line in 40 s\n{}",
            px.dump(20)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        said.ends_with("(stalled: 1 peer, all choking us)"),
        "{said}"
    );
    px.kill();
    seeder.stop();
}
