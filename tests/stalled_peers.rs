//! Stalled peers (issue 12): eight peers that handshake, claim every piece, unchoke and then never
//! send a block, beside one honest python3-libtorrent seeder held to 1 MiB/s, all from a real
//! opentracker on 127.0.0.1. pixtorrent must still finish, taking every block from the honest seeder.

mod common;

use std::time::Duration;

use common::blackhole::BlackHoles;
use common::payload::{assert_same_tree, Payload};
use common::seeders::{LtOptions, LtPeer};
use common::{expect_success, pixtorrent, wait_for_seeders, Opentracker};

/// 64 KiB pieces, as in the torrent.
const PIECE_LENGTH: u32 = 64 * 1024;
/// 65 pieces, the last one short: about 4.2 MB.
const TOTAL: u64 = 65 * PIECE_LENGTH as u64 - 12_345;
/// The honest seeder's upload limit: alone it serves the payload in about 4 s.
const HONEST_RATE: u64 = 1 << 20;
const BLACK_HOLES: usize = 8;
/// Generous: about 5 s is what the honest seeder alone allows, 20–42 s is what the issue measured.
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(90);

#[test]
fn black_hole_peers_do_not_stop_a_download_from_an_honest_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let mut payload = Payload::with_piece_length(
        dir.path(),
        TOTAL,
        PIECE_LENGTH,
        "http://127.0.0.1:9/announce",
    );
    assert_eq!(payload.piece_count(), 65);
    let Some(tracker) = Opentracker::start(&[payload.info_hash]) else {
        return;
    };
    payload.set_announce(&tracker.http);
    let opts = LtOptions {
        upload_limit: HONEST_RATE,
        ..LtOptions::default()
    };
    let Some(mut honest) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    let pieces = payload.piece_count();
    let Some(mut holes) = BlackHoles::start(payload.info_hash, pieces, BLACK_HOLES, &tracker.http)
    else {
        return;
    };
    // Nine seeders at the tracker before pixtorrent asks it: it learns of all of them at once.
    let seeders = BLACK_HOLES as i64 + 1;
    wait_for_seeders(
        &tracker.http,
        payload.info_hash,
        seeders,
        Duration::from_secs(30),
    );

    let out = dir.path().join("leech");
    let (mut px, _) = pixtorrent(
        "pixtorrent",
        &payload.torrent,
        &out,
        [127, 0, 0, 1].into(),
        &["-v"],
    );
    let took = expect_success(&mut px, DOWNLOAD_LIMIT);
    let handshakes = holes.handshakes();
    let reports = holes.stop();
    honest.stop();
    let (up, _) = honest.transferred();
    let snubs: Vec<String> = px
        .stderr()
        .into_iter()
        .filter(|l| l.contains("snubbed") || l.contains("timed out"))
        .collect();
    eprintln!(
        "download time with {BLACK_HOLES} black holes beside a {HONEST_RATE} B/s seeder: {took:.1?}\n\
         honest seeder uploaded {up} bytes; black holes: {handshakes} handshakes, {reports:?}\n\
         pixtorrent on stalled requests:\n  {}",
        snubs.join("\n  ")
    );
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    assert!(
        up >= payload.total,
        "the honest seeder uploaded {up} of {} bytes",
        payload.total
    );
    // Otherwise the black holes were not in play and the test proves nothing.
    let requested: u64 = reports.iter().map(|r| r.requests).sum();
    assert!(
        handshakes >= 1 && requested >= 1,
        "pixtorrent asked the black holes for nothing ({handshakes} handshakes, {reports:?})"
    );
}
