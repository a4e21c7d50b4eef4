//! No network at all: a torrent whose trackers (HTTP and UDP) and web seeds are `.invalid` names
//! (RFC 6761: they never resolve) ends with status 1 within 90 s, one line per source with its last
//! error, instead of waiting out the mirrors' backoff for minutes.

mod common;

use std::time::{Duration, Instant};

use common::payload::{Payload, SMALL};

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
