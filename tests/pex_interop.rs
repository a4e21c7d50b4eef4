//! Peer exchange (BEP 11) with python3-libtorrent, both ways: pixtorrent finds a seeder only through
//! a libtorrent peer's `ut_pex`, and a libtorrent leecher finds a seeder only through pixtorrent's.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::payload::{assert_same_tree, STANDARD};
use common::seeders::{LtOptions, LtPeer};
use common::{expect_success, payload_and_tracker, pixtorrent, wait_for_seeders};

#[test]
fn pixtorrent_learns_the_seeder_from_a_libtorrent_peer_s_pex() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, tracker)) = payload_and_tracker(dir.path(), STANDARD) else {
        return;
    };
    let Some(mut seeder) = LtPeer::seed(&payload.torrent, &payload.save_dir) else {
        return;
    };
    wait_for_seeders(&tracker.http, payload.info_hash, 1, Duration::from_secs(30));
    // A leecher that knows the seeder through the tracker, held to a trickle both ways: it stays
    // a leecher connected to the seeder, and can give pixtorrent little but the metadata and PEX.
    let relay_dir = dir.path().join("relay");
    std::fs::create_dir_all(&relay_dir).unwrap();
    let opts = LtOptions {
        seed: false,
        upload_limit: 4_000,
        download_limit: 50_000,
        ..LtOptions::default()
    };
    let Some(mut relay) = LtPeer::start(&payload.torrent, &relay_dir, &opts) else {
        return;
    };
    // No tracker in the link, and only the relay by hand: the seeder can come from PEX alone.
    let magnet = format!("magnet:?xt=urn:btih:{}", payload.info_hash);
    let out = dir.path().join("px");
    let relay_addr = relay.addr.to_string();
    let (mut px, _) = pixtorrent(
        "pixtorrent",
        Path::new(&magnet),
        &out,
        Ipv4Addr::LOCALHOST,
        &["--peer", &relay_addr, "-v"],
    );
    expect_success(&mut px, Duration::from_secs(180));
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    let summary = px.stdout().join("\n");
    let by_source = summary
        .lines()
        .find(|l| l.trim_start().starts_with("peers by source:"))
        .unwrap_or_else(|| panic!("{summary}"));
    let pex_bytes: u64 = by_source
        .split("pex ")
        .nth(1)
        .and_then(|rest| rest.split('(').nth(1))
        .and_then(|b| b.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pex peer in {by_source:?}"));
    assert!(
        pex_bytes > payload.total / 2,
        "the seeder found by PEX supplied most of it: {by_source}"
    );
    relay.stop();
    seeder.stop();
}

#[test]
fn a_libtorrent_leecher_learns_the_seeder_from_pixtorrent_s_pex() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, tracker)) = payload_and_tracker(dir.path(), STANDARD) else {
        return;
    };
    // A slow seeder, so that pixtorrent is still downloading from it when the leecher arrives.
    let opts = LtOptions {
        upload_limit: 1_500_000,
        ..LtOptions::default()
    };
    let Some(mut seeder) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    wait_for_seeders(&tracker.http, payload.info_hash, 1, Duration::from_secs(30));
    let out = dir.path().join("px");
    let (mut px, px_addr) = pixtorrent(
        "pixtorrent",
        &payload.torrent,
        &out,
        Ipv4Addr::LOCALHOST,
        &["--seed", "--seed-time", "120"],
    );
    // The leecher has a torrent with no reachable tracker and is given only pixtorrent.
    let lone = payload.torrent_with(
        &dir.path().join("lone.torrent"),
        "http://127.0.0.1:9/announce",
    );
    let lt_dir = dir.path().join("lt");
    std::fs::create_dir_all(&lt_dir).unwrap();
    let opts = LtOptions {
        seed: false,
        exit_when_done: true,
        wait_tracker: false,
        connect: vec![px_addr],
        ..LtOptions::default()
    };
    let Some(mut leecher) = LtPeer::start(&lone, &lt_dir, &opts) else {
        return;
    };
    leecher.wait_done(Duration::from_secs(180));
    assert_same_tree(&payload.root(), &lt_dir.join(payload.name()));
    // Blocks from anyone but pixtorrent: the seeder, dialled by the leecher (its listening address)
    // or dialling it (an ephemeral port), since PEX told each about the other.
    let lines = leecher.proc.stdout();
    let from_seeder = lines
        .iter()
        .filter_map(|l| l.strip_prefix("PEER "))
        .filter(|l| !l.starts_with(&format!("{px_addr} ")))
        .filter_map(|l| l.split("blocks=").nth(1))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum::<u64>();
    eprintln!(
        "leecher peers: {:?}",
        lines
            .iter()
            .filter(|l| l.starts_with("PEER "))
            .collect::<Vec<_>>()
    );
    assert!(
        from_seeder > 0,
        "the leecher got nothing from the seeder it could only learn of by PEX:\n{}",
        leecher.proc.dump(20)
    );
    let _ = px.stop();
    seeder.stop();
}
