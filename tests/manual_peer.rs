//! `--peer IP:PORT`: a torrent whose only tracker is dead (or absent) downloads from a peer named by
//! hand, and the summary counts that peer under its source.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::payload::{assert_same_tree, Payload, SMALL};
use common::seeders::{LtOptions, LtPeer};
use common::{expect_success, pixtorrent};

#[test]
fn a_peer_given_by_hand_is_dialled_and_counted_as_such() {
    let dir = tempfile::tempdir().unwrap();
    // The only tracker is a closed port: nobody would find the seeder but through --peer.
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    let opts = LtOptions {
        wait_tracker: false,
        ..LtOptions::default()
    };
    let Some(mut seeder) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    let out = dir.path().join("out");
    let peer = seeder.addr.to_string();
    let (mut px, _) = pixtorrent(
        "pixtorrent --peer",
        &payload.torrent,
        &out,
        Ipv4Addr::LOCALHOST,
        &["--peer", &peer, "-v"],
    );
    expect_success(&mut px, Duration::from_secs(120));
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    let summary = px.stdout().join("\n");
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("peers by source:"))
        .unwrap_or_else(|| panic!("no per-source line in {summary}"));
    assert!(line.contains("--peer 1 ("), "{line}");
    assert!(!line.contains("tracker"), "{line}");
    let log = px.stderr().join("\n");
    assert!(
        log.contains("source=--peer"),
        "the connection log names the source"
    );
    seeder.stop();
}

#[test]
fn without_trackers_web_seeds_or_peers_there_is_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    let bare = dir.path().join("bare.torrent");
    payload.torrent_with_tiers(&bare, &[], &[]);
    let out = dir.path().join("out");
    let (mut px, _) = pixtorrent("bare", &bare, &out, Ipv4Addr::LOCALHOST, &[]);
    let status = px.wait_exit(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(1));
    let err = px.stderr().join("\n");
    assert!(err.contains("no --peer was given"), "{err}");
}
