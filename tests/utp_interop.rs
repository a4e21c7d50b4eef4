//! uTP (BEP 29) against python3-libtorrent with TCP switched off (`enable_incoming_tcp =
//! enable_outgoing_tcp = False`), so uTP is the only way: a TCP-less seeder -> pixtorrent with
//! default options (TCP tried first, uTP after it fails), byte-identical, from a `.torrent` and from
//! a magnet link (metadata over uTP); the same with MSE required
//! on both sides over uTP (`--no-tcp --encryption require`); and the reverse, a pixtorrent seeder
//! serving a TCP-less libtorrent leecher.

mod common;

use std::time::Duration;

use common::payload::{Payload, STANDARD};
use common::seeders::{LtOptions, LtPeer};

fn utp_only(seed: bool) -> LtOptions {
    LtOptions {
        seed,
        wait_tracker: false,
        tcp: false,
        utp: true,
        ..LtOptions::default()
    }
}

/// The transports `-v` logged for connected peers.
fn transports(px: &common::seeders::Proc) -> Vec<String> {
    px.stderr()
        .iter()
        .filter(|l| l.contains(" connected "))
        .filter_map(|l| l.split("transport=\"").nth(1))
        .filter_map(|t| t.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn pixtorrent_downloads_over_utp_from_a_tcp_less_libtorrent_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), STANDARD, "http://127.0.0.1:9/announce");
    let Some(mut seeder) = LtPeer::start(&payload.torrent, &payload.save_dir, &utp_only(true))
    else {
        return;
    };
    let peer = seeder.addr.to_string();
    // Default options: TCP is refused, so uTP follows at once.
    let out = dir.path().join("px");
    let (mut px, _) = common::pixtorrent(
        "pixtorrent",
        &payload.torrent,
        &out,
        std::net::Ipv4Addr::LOCALHOST,
        &["--peer", &peer, "-v"],
    );
    common::expect_success(&mut px, Duration::from_secs(120));
    common::payload::assert_same_tree(&payload.root(), &out.join(payload.name()));
    let seen = transports(&px);
    assert!(
        !seen.is_empty() && seen.iter().all(|t| t.starts_with("utp")),
        "{seen:?}\n{}",
        px.dump(20)
    );
    // A magnet link: the metadata comes over uTP too.
    let magnet = format!("magnet:?xt=urn:btih:{}&x.pe={peer}", payload.info_hash);
    let out = dir.path().join("magnet");
    let (mut px, _) = common::pixtorrent(
        "pixtorrent magnet",
        std::path::Path::new(&magnet),
        &out,
        std::net::Ipv4Addr::LOCALHOST,
        &[],
    );
    common::expect_success(&mut px, Duration::from_secs(120));
    common::payload::assert_same_tree(&payload.root(), &out.join(payload.name()));
    seeder.stop();
    // MSE over uTP: a seeder forcing encryption, pixtorrent with no TCP at all and RC4 required.
    let opts = LtOptions {
        encryption: "forced",
        ..utp_only(true)
    };
    let Some(mut seeder) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    let peer = seeder.addr.to_string();
    let out = dir.path().join("px-rc4");
    let (mut px, _) = common::pixtorrent(
        "pixtorrent rc4",
        &payload.torrent,
        &out,
        std::net::Ipv4Addr::LOCALHOST,
        &["--peer", &peer, "-v", "--no-tcp", "--encryption", "require"],
    );
    common::expect_success(&mut px, Duration::from_secs(120));
    common::payload::assert_same_tree(&payload.root(), &out.join(payload.name()));
    let seen = transports(&px);
    assert!(
        !seen.is_empty() && seen.iter().all(|t| t == "utp+rc4"),
        "{seen:?}\n{}",
        px.dump(20)
    );
    seeder.stop();
}

#[test]
fn a_tcp_less_libtorrent_leecher_downloads_over_utp_from_pixtorrent() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), STANDARD, "http://127.0.0.1:9/announce");
    let (mut px, px_addr) = common::pixtorrent(
        "pixtorrent seeder",
        &payload.torrent,
        &payload.save_dir,
        std::net::Ipv4Addr::LOCALHOST,
        &["--seed", "--seed-time", "120", "-v"],
    );
    common::wait_for_tcp(px_addr, Duration::from_secs(30));
    let leech_dir = dir.path().join("lt");
    std::fs::create_dir_all(&leech_dir).unwrap();
    let opts = LtOptions {
        connect: vec![px_addr],
        ..utp_only(false)
    };
    let Some(mut leecher) = LtPeer::start(&payload.torrent, &leech_dir, &opts) else {
        return;
    };
    leecher.wait_done(Duration::from_secs(120));
    common::payload::assert_same_tree(&payload.root(), &leech_dir.join(payload.name()));
    let seen = transports(&px);
    assert!(
        !seen.is_empty() && seen.iter().all(|t| t.starts_with("utp")),
        "{seen:?}\n{}",
        px.dump(20)
    );
    leecher.stop();
    px.stop();
}
