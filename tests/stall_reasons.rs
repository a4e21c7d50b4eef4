//! Why a download is stuck, said plainly. No network at all: a torrent whose trackers (HTTP and UDP)
//! and web seeds are `.invalid` names (RFC 6761: they never resolve) says so on its progress lines
//! after 10 s and ends with status 1 within 90 s, one line per source with its last error, instead
//! of waiting out the mirrors' backoff for minutes. A seeder that never unchokes us: the progress
//! line says the peer is choking us.

mod common;

use std::time::{Duration, Instant};

use common::payload::{Payload, SMALL};
use common::seeders::{LtOptions, LtPeer};
use common::webserver::WebServer;

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

/// Copies the tree at `from` to `to`.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_file_changed_on_the_only_mirror_ends_with_status_3_and_the_rest_complete() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    // The mirror serves a copy in which the largest file changed after the torrent was made (as
    // Internet Archive items' _meta.xml do); no peer has it.
    let mirror = dir.path().join("mirror");
    copy_tree(&payload.save_dir, &mirror);
    let (changed, _) = payload
        .files
        .iter()
        .max_by_key(|(_, len)| *len)
        .unwrap()
        .clone();
    let path = mirror.join(payload.name()).join(&changed);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let server = WebServer::start(&mirror);
    let torrent = payload.torrent_with_tiers(
        &dir.path().join("stale.torrent"),
        &["http://127.0.0.1:9/announce"],
        &[&server.url("good", "")],
    );
    let out = dir.path().join("out");
    let start = Instant::now();
    let (mut px, _) = common::pixtorrent(
        "pixtorrent",
        &torrent,
        &out,
        std::net::Ipv4Addr::LOCALHOST,
        &["--stall-timeout", "3"],
    );
    let status = px.wait_exit(Duration::from_secs(90));
    assert_eq!(status.and_then(|s| s.code()), Some(3), "{}", px.dump(30));
    let err = px.stderr().join("\n");
    eprintln!("ended after {:.1?}:\n{err}", start.elapsed());
    assert!(
        err.contains("nothing can supply the missing pieces"),
        "{err}"
    );
    assert!(
        err.contains("differ on every mirror and no peer has them"),
        "{err}"
    );
    let changed_name = changed.to_string_lossy().replace('\\', "/");
    let incomplete: Vec<&str> = err
        .lines()
        .filter(|l| l.trim_start().starts_with("incomplete: "))
        .collect();
    assert!(
        incomplete.iter().any(|l| l.contains(&changed_name)),
        "{changed_name} listed as incomplete:\n{err}"
    );
    // Every file listed complete is on disk, byte for byte.
    let complete: Vec<String> = err
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("complete: "))
        .map(str::to_string)
        .collect();
    assert!(!complete.is_empty(), "{err}");
    for name in &complete {
        let rel = name
            .strip_prefix(&format!("{}/", payload.name()))
            .unwrap_or(name);
        let want = std::fs::read(payload.root().join(rel)).unwrap();
        let got = std::fs::read(out.join(payload.name()).join(rel)).unwrap();
        assert!(want == got, "{name} differs");
    }
}
