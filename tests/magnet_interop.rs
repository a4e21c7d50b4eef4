//! Magnet links (BEP 9) with real clients: a python3-libtorrent leecher given only a magnet link
//! fetches the metadata from a pixtorrent seeder over `ut_metadata`, then the data.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::payload::{assert_same_tree, STANDARD};
use common::seeders::{LtOptions, LtPeer};
use common::{payload_and_tracker, pixtorrent, wait_for_seeders};

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
