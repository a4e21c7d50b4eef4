//! Fast resume (issue 16): a completed download restarts from its resume file without hashing
//! (timed against `--recheck`, figures printed, not asserted); a same-size edit to one file (its
//! mtime moves) is caught and only that piece is fetched again; `kill -9` at several moments of a
//! download never makes the next start trust a piece that is not valid on disk, nor lose one that is.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::payload::{Payload, STANDARD};
use common::seeders::{LtOptions, LtPeer, Proc};
use sha1::{Digest, Sha1};

/// How many pieces of `payload` hash correctly in its copy at `root` (where `payload.files` are),
/// read independently of pixtorrent.
fn valid_pieces(payload: &Payload, root: &Path) -> u32 {
    let mut stream = Vec::with_capacity(payload.total as usize);
    for (rel, len) in &payload.files {
        let mut data = std::fs::read(root.join(rel)).unwrap_or_default();
        data.resize(*len as usize, 0);
        stream.extend_from_slice(&data);
    }
    let meta =
        pixtorrent::metainfo::Metainfo::from_bytes(&std::fs::read(&payload.torrent).unwrap())
            .unwrap();
    stream
        .chunks(payload.piece_length as usize)
        .zip(&meta.info.piece_hashes)
        .filter(|(chunk, hash)| Sha1::digest(chunk).as_slice() == &hash[..])
        .count() as u32
}

/// Starts pixtorrent with no peer (`-v`) and returns the pieces its start-up check accepted.
fn pieces_on_disk(payload: &Payload, out: &Path) -> u32 {
    let (mut px, _) = common::pixtorrent(
        "pixtorrent check",
        &payload.torrent,
        out,
        std::net::Ipv4Addr::LOCALHOST,
        &["-v"],
    );
    let start = Instant::now();
    let line = loop {
        if let Some(l) = px
            .stderr()
            .into_iter()
            .find(|l| l.contains("pieces_on_disk="))
        {
            break l;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60) && px.try_status().is_none(),
            "no start-up check line\n{}",
            px.dump(20)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    px.kill();
    line.split("pieces_on_disk=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("a count")
}

fn download(name: &str, payload: &Payload, out: &Path, peer: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["--peer", peer];
    args.extend_from_slice(extra);
    common::pixtorrent(
        name,
        &payload.torrent,
        out,
        std::net::Ipv4Addr::LOCALHOST,
        &args,
    )
    .0
}

fn seeder(payload: &Payload, upload_limit: u64) -> Option<LtPeer> {
    let opts = LtOptions {
        wait_tracker: false,
        upload_limit,
        ..LtOptions::default()
    };
    LtPeer::start(&payload.torrent, &payload.save_dir, &opts)
}

#[test]
fn a_completed_download_restarts_without_hashing_and_an_edit_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), STANDARD, "http://127.0.0.1:9/announce");
    let Some(mut seed) = seeder(&payload, 0) else {
        return;
    };
    let peer = seed.addr.to_string();
    let out = dir.path().join("px");
    let mut px = download("pixtorrent", &payload, &out, &peer, &[]);
    common::expect_success(&mut px, Duration::from_secs(120));
    let pieces = payload.piece_count() as u32;
    // Restart, complete, no peer needed: timed with the resume file and with --recheck.
    let timed = |extra: &[&str]| {
        let start = Instant::now();
        let mut px = download("pixtorrent restart", &payload, &out, &peer, extra);
        common::expect_success(&mut px, Duration::from_secs(60));
        let all = format!("pieces already on disk: {pieces}/{pieces}");
        assert!(
            px.stdout().iter().any(|l| l.contains(&all)),
            "{}",
            px.dump(20)
        );
        start.elapsed()
    };
    let full = timed(&["--recheck"]);
    let fast = timed(&[]);
    eprintln!("restart of a complete 64 MB download: {fast:.2?} with resume data, {full:.2?} with --recheck");
    // One byte of the largest file changed, same size: its mtime moves, so its pieces are hashed
    // again; the bad one is fetched again, and only it.
    let (rel, _) = payload.files.iter().max_by_key(|(_, len)| *len).unwrap();
    let path = out
        .join(payload.name())
        .join(rel.strip_prefix(payload.name()).unwrap_or(rel));
    let path = if path.exists() { path } else { out.join(rel) };
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(
        valid_pieces(&payload, &out.join(payload.name())),
        pieces - 1
    );
    let mut px = download("pixtorrent after edit", &payload, &out, &peer, &[]);
    common::expect_success(&mut px, Duration::from_secs(60));
    common::payload::assert_same_tree(&payload.root(), &out.join(payload.name()));
    let pieces_line = format!("pieces already on disk: {}/{pieces}", pieces - 1);
    assert!(
        px.stdout().iter().any(|l| l.contains(&pieces_line)),
        "{}",
        px.dump(20)
    );
    seed.stop();
}

#[test]
fn kill_9_never_makes_an_unverified_piece_count_nor_loses_a_verified_one() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), STANDARD, "http://127.0.0.1:9/announce");
    // 8 MB/s: the 64 MB download takes about 8 s, so each kill lands mid-download.
    let Some(mut seed) = seeder(&payload, 8_000_000) else {
        return;
    };
    let peer = seed.addr.to_string();
    let out = dir.path().join("px");
    for (round, ms) in [800u64, 2000, 2500, 3000].into_iter().enumerate() {
        let mut px = download("pixtorrent", &payload, &out, &peer, &[]);
        std::thread::sleep(Duration::from_millis(ms));
        px.kill();
        let trusted = pieces_on_disk(&payload, &out);
        let valid = valid_pieces(&payload, &out.join(payload.name()));
        eprintln!("round {round}: killed after {ms} ms; {trusted} pieces accepted, {valid} valid");
        assert_eq!(
            trusted, valid,
            "round {round}: accepted pieces must be exactly the valid ones"
        );
    }
    let mut px = download("pixtorrent last", &payload, &out, &peer, &[]);
    common::expect_success(&mut px, Duration::from_secs(120));
    common::payload::assert_same_tree(&payload.root(), &out.join(payload.name()));
    seed.stop();
}
