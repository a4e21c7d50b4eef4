//! `--max-download-rate` and `--max-upload-rate` against python3-libtorrent: a 64 MB download at 8M
//! (8 MiB/s) takes total/rate within 10%, measured as a user would (the whole command's wall time),
//! and so does seeding to a libtorrent leecher at 8M (its own time to completion).

mod common;

use std::time::{Duration, Instant};

use common::payload::{Payload, STANDARD};
use common::seeders::{LtOptions, LtPeer};

const RATE: f64 = 8.0 * 1024.0 * 1024.0;

/// The two tests run one at a time: each times a transfer, and the other's processes would compete
/// for the same two cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check(what: &str, took: f64, total: u64) {
    let expected = total as f64 / RATE;
    eprintln!("{what}: {took:.2} s for {total} bytes at 8 MiB/s (expected {expected:.2} s)");
    assert!(
        (took - expected).abs() <= 0.1 * expected,
        "{what}: {took:.2} s, expected {expected:.2} s ± 10%"
    );
}

#[test]
fn a_download_capped_at_8m_takes_size_over_rate() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), STANDARD, "http://127.0.0.1:9/announce");
    let opts = LtOptions {
        wait_tracker: false,
        ..LtOptions::default()
    };
    let Some(mut seeder) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    let peer = seeder.addr.to_string();
    let out = dir.path().join("px");
    let start = Instant::now();
    let (mut px, _) = common::pixtorrent(
        "pixtorrent",
        &payload.torrent,
        &out,
        std::net::Ipv4Addr::LOCALHOST,
        &["--peer", &peer, "--max-download-rate", "8M"],
    );
    common::expect_success(&mut px, Duration::from_secs(60));
    let took = start.elapsed().as_secs_f64();
    common::payload::assert_same_tree(&payload.root(), &out.join(payload.name()));
    check("download", took, payload.total);
    seeder.stop();
}

#[test]
fn seeding_capped_at_8m_takes_size_over_rate() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), STANDARD, "http://127.0.0.1:9/announce");
    let (mut px, px_addr) = common::pixtorrent(
        "pixtorrent seeder",
        &payload.torrent,
        &payload.save_dir,
        std::net::Ipv4Addr::LOCALHOST,
        &["--seed", "--seed-time", "120", "--max-upload-rate", "8M"],
    );
    common::wait_for_tcp(px_addr, Duration::from_secs(30));
    let leech_dir = dir.path().join("lt");
    std::fs::create_dir_all(&leech_dir).unwrap();
    let opts = LtOptions {
        seed: false,
        wait_tracker: false,
        connect: vec![px_addr],
        ..LtOptions::default()
    };
    let Some(mut leecher) = LtPeer::start(&payload.torrent, &leech_dir, &opts) else {
        return;
    };
    let done = leecher.wait_done(Duration::from_secs(60));
    let took: f64 = done
        .trim_start_matches("DONE t=")
        .trim()
        .parse()
        .expect("DONE t=S");
    common::payload::assert_same_tree(&payload.root(), &leech_dir.join(payload.name()));
    check("upload", took, payload.total);
    leecher.stop();
    px.stop();
}
