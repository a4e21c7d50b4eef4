//! Magnet links (BEP 9) with real clients: a python3-libtorrent leecher given only a magnet link
//! fetches the metadata from a pixtorrent seeder over `ut_metadata`, then the data.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::payload::{assert_same_tree, STANDARD};
use common::seeders::{LtOptions, LtPeer};
use common::{expect_success, payload_and_tracker, pixtorrent, wait_for_seeders};

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
    let info = std::process::Command::new(env!("CARGO_BIN_EXE_pixtorrent"))
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
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pixtorrent"))
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
