//! BitTorrent v2 (BEP 52) with a real libtorrent: v2-only and hybrid torrents made by python3-libtorrent
//! 2.0 (`tests/peers/lt_make_v2.py`) downloaded by the `pixtorrent` binary from a libtorrent seeder
//! (`--peer`, or found through a real opentracker), and a v2-only torrent made by `pixtorrent create
//! --v2` seeded by pixtorrent to a libtorrent leecher. Every file must come out byte-identical, the
//! empty one included, and no BEP 47 pad file may reach the disk.
//!
//! The tree has files larger and smaller than a piece, none of them piece-aligned but one, and an
//! empty one, so the v2 layout puts pad files between them. opentracker knows nothing of v2: the
//! truncated SHA-256 info-hash is just one more 20-byte hash to it, whitelisted like any other.
//!
//! Skips without python3-libtorrent (or opentracker) unless PIXTORRENT_REQUIRE_TOOLS=1.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::payload::assert_same_tree;
use common::seeders::{python_with_libtorrent, script, LtOptions, LtPeer, Proc};
use common::{expect_success, pixtorrent, wait_for_seeders, Opentracker};
use pixtorrent::types::InfoHash;

/// Each download here moves about 250 KB on loopback; this bounds a hung one.
const TIMEOUT: Duration = Duration::from_secs(30);
const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// 32 KiB pieces: several per file, and a pad after every unaligned file.
const PIECE: u32 = 32_768;
/// The shared directory's name.
const ITEM: &str = "v2item";
/// Relative path and length of each file of the tree.
const FILES: [(&str, usize); 6] = [
    ("a.bin", 70_000),
    ("b/c.txt", 5),
    ("b/d.bin", 100_001),
    ("b/empty", 0),
    ("e.bin", 40_000),
    ("f.bin", 32_768),
];

/// Writes the tree under `dir/ITEM`; returns its root.
fn tree(dir: &Path) -> PathBuf {
    let root = dir.join(ITEM);
    for (seed, (path, len)) in FILES.iter().enumerate() {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        let bytes: Vec<u8> = (0..*len)
            .map(|i| ((i * 131 + seed * 7 + (i >> 12)) % 253) as u8)
            .collect();
        std::fs::write(full, bytes).unwrap();
    }
    root
}

/// A torrent libtorrent made, and what it says of it.
struct Made {
    torrent: PathBuf,
    v1: Option<InfoHash>,
    /// The truncated v2 info-hash: the v2 swarm's 20-byte id.
    v2: InfoHash,
    /// The whole v2 info-hash (SHA-256), in hex, as a `urn:btmh:` magnet link names it.
    v2_hex: String,
    pads: u64,
    pieces: u64,
}

/// Has libtorrent make a `kind` (`v2` or `hybrid`) torrent of `root` at `out`, announcing to
/// `tracker` if given; `None` (skipped) without python3-libtorrent.
fn lt_make(root: &Path, kind: &str, out: &Path, tracker: Option<&str>) -> Option<Made> {
    let python = python_with_libtorrent()?;
    let mut cmd = Command::new(python);
    cmd.arg(script("lt_make_v2.py"))
        .arg(root)
        .arg(PIECE.to_string())
        .arg(kind)
        .arg(out)
        .args(tracker);
    let mut proc = Proc::spawn("lt_make_v2", cmd);
    let status = proc.wait_exit(TIMEOUT);
    assert!(
        status.is_some_and(|s| s.success()),
        "lt_make_v2.py: {status:?}\n{}",
        proc.dump(20)
    );
    let json: serde_json::Value = serde_json::from_str(&proc.stdout().join("")).unwrap();
    let v2 = json["v2"].as_str().unwrap();
    Some(Made {
        torrent: out.to_path_buf(),
        v1: json["v1"].as_str().and_then(InfoHash::from_hex),
        v2: InfoHash::from_hex(&v2[..40]).unwrap(),
        v2_hex: v2.to_string(),
        pads: json["pads"].as_u64().unwrap(),
        pieces: json["num_pieces"].as_u64().unwrap(),
    })
}

/// A libtorrent seeder of `made` from `seed_dir` that waits for no tracker.
fn lt_seeder(made: &Made, seed_dir: &Path) -> Option<LtPeer> {
    let opts = LtOptions {
        wait_tracker: false,
        ..LtOptions::default()
    };
    LtPeer::start(&made.torrent, seed_dir, &opts)
}

/// Downloads `made` with pixtorrent into `out` (with `extra` arguments) and checks the tree;
/// returns pixtorrent's summary (stdout).
fn download(made: &Made, seed_root: &Path, out: &Path, extra: &[&str]) -> String {
    let start = Instant::now();
    let (mut px, _) = pixtorrent("pixtorrent", &made.torrent, out, LOCALHOST, extra);
    expect_success(&mut px, TIMEOUT);
    assert_same_tree(seed_root, &out.join(ITEM));
    assert!(
        !out.join(ITEM).join(".pad").exists(),
        "a pad file reached the disk"
    );
    eprintln!("downloaded in {:.1?}", start.elapsed());
    px.stdout().join("\n")
}

#[test]
fn a_v2_only_torrent_from_a_libtorrent_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let seed_root = tree(&dir.path().join("seed"));
    let Some(made) = lt_make(&seed_root, "v2", &dir.path().join("v2.torrent"), None) else {
        return;
    };
    assert!(made.v1.is_none(), "libtorrent made a v2-only torrent");
    assert!(made.pads >= 3, "unaligned files get pads ({})", made.pads);
    let Some(seeder) = lt_seeder(&made, &dir.path().join("seed")) else {
        return;
    };
    let peer = seeder.addr.to_string();
    let out = dir.path().join("out");
    download(&made, &seed_root, &out, &["--peer", &peer]);
    // Again, with a byte of d.bin's second piece changed: the start-up check (SHA-256 Merkle roots,
    // every piece hashed with --recheck) finds every piece but that one, which is fetched again.
    let pieces = made.pieces;
    let summary = download(&made, &seed_root, &out, &["--peer", &peer, "--recheck"]);
    assert!(summary.contains(&format!("pieces already on disk: {pieces}/{pieces}")));
    let d = out.join(ITEM).join("b/d.bin");
    let mut bytes = std::fs::read(&d).unwrap();
    bytes[PIECE as usize + 7] ^= 0x20;
    std::fs::write(&d, bytes).unwrap();
    let summary = download(&made, &seed_root, &out, &["--peer", &peer, "--recheck"]);
    let one_short = format!("pieces already on disk: {}/{pieces}", pieces - 1);
    assert!(summary.contains(&one_short), "{summary}");
}

#[test]
fn a_hybrid_torrent_from_a_libtorrent_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let seed_root = tree(&dir.path().join("seed"));
    let Some(made) = lt_make(&seed_root, "hybrid", &dir.path().join("h.torrent"), None) else {
        return;
    };
    assert!(made.v1.is_some(), "a hybrid has a v1 info-hash");
    let Some(seeder) = lt_seeder(&made, &dir.path().join("seed")) else {
        return;
    };
    let peer = seeder.addr.to_string();
    download(
        &made,
        &seed_root,
        &dir.path().join("out"),
        &["--peer", &peer],
    );
}

/// A hybrid's v1 magnet link (`urn:btih:`): the metadata comes without `piece layers`; they are
/// fetched from the seeder (it set the v2 bit) by `hash request`, so pieces are checked by SHA-1 and
/// SHA-256, and the `.torrent` saved beside the download carries them.
#[test]
fn a_hybrid_magnet_link_from_a_libtorrent_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let seed_root = tree(&dir.path().join("seed"));
    let Some(made) = lt_make(&seed_root, "hybrid", &dir.path().join("h.torrent"), None) else {
        return;
    };
    let Some(seeder) = lt_seeder(&made, &dir.path().join("seed")) else {
        return;
    };
    let v1 = made.v1.unwrap();
    let magnet = format!("magnet:?xt=urn:btih:{v1}&dn={ITEM}&x.pe={}", seeder.addr);
    let made = Made {
        torrent: PathBuf::from(magnet),
        ..made
    };
    download(&made, &seed_root, &dir.path().join("out"), &[]);
    assert_saved_with_layers(&dir.path().join("out"));
}

/// The `.torrent` a magnet download saved in `out` has `piece layers` (fetched from peers).
fn assert_saved_with_layers(out: &Path) {
    let saved = std::fs::read(out.join(format!("{ITEM}.torrent"))).unwrap();
    let meta = pixtorrent::metainfo::Metainfo::from_bytes_any_version(&saved).unwrap();
    assert!(
        meta.info.has_piece_layers(),
        "the saved .torrent has no piece layers"
    );
}

/// A v2-only magnet link (`urn:btmh:`) from a libtorrent seeder: the `info` by `ut_metadata`
/// (checked by SHA-256), the piece layers by `hash request`, then a byte-identical download.
#[test]
fn a_v2_only_magnet_link_from_a_libtorrent_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let seed_root = tree(&dir.path().join("seed"));
    let Some(made) = lt_make(&seed_root, "v2", &dir.path().join("v2.torrent"), None) else {
        return;
    };
    let Some(seeder) = lt_seeder(&made, &dir.path().join("seed")) else {
        return;
    };
    let magnet = format!(
        "magnet:?xt=urn:btmh:1220{}&dn={ITEM}&x.pe={}",
        made.v2_hex, seeder.addr
    );
    let made = Made {
        torrent: PathBuf::from(magnet),
        ..made
    };
    download(&made, &seed_root, &dir.path().join("out"), &[]);
    assert_saved_with_layers(&dir.path().join("out"));
}

/// A hybrid's magnet link naming both hashes (`urn:btih:` and `urn:btmh:`): the metadata must
/// match both, and `--info` on the link shows both.
#[test]
fn a_hybrid_magnet_link_with_both_hashes_from_a_libtorrent_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let seed_root = tree(&dir.path().join("seed"));
    let Some(made) = lt_make(&seed_root, "hybrid", &dir.path().join("h.torrent"), None) else {
        return;
    };
    let Some(seeder) = lt_seeder(&made, &dir.path().join("seed")) else {
        return;
    };
    let v1 = made.v1.unwrap();
    let (btih, btmh) = (
        format!("xt=urn:btih:{v1}"),
        format!("xt=urn:btmh:1220{}", made.v2_hex),
    );
    let magnet = format!("magnet:?{btmh}&{btih}&dn={ITEM}&x.pe={}", seeder.addr);
    let info = common::px().args(["--info", &magnet]).output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success(), "{text}");
    assert!(text.contains(&btih) && text.contains(&btmh), "{text}");
    let made = Made {
        torrent: PathBuf::from(magnet),
        ..made
    };
    download(&made, &seed_root, &dir.path().join("out"), &[]);
    assert_saved_with_layers(&dir.path().join("out"));
}

/// A hybrid magnet link naming both hashes joins both swarms while it fetches the metadata: with
/// only the truncated v2 id whitelisted at opentracker, the libtorrent seeder is found in the v2
/// swarm alone, and the metadata, the piece layers and the data all come from it.
#[test]
fn a_hybrid_magnet_link_finds_its_seeder_in_the_v2_swarm() {
    let dir = tempfile::tempdir().unwrap();
    let seed_root = tree(&dir.path().join("seed"));
    let torrent = dir.path().join("h.torrent");
    let Some(first) = lt_make(&seed_root, "hybrid", &torrent, None) else {
        return;
    };
    let Some(tracker) = Opentracker::start(&[first.v2]) else {
        return;
    };
    let made = lt_make(&seed_root, "hybrid", &torrent, Some(&tracker.http)).unwrap();
    let Some(_seeder) = LtPeer::seed(&made.torrent, &dir.path().join("seed")) else {
        return;
    };
    wait_for_seeders(&tracker.http, made.v2, 1, TIMEOUT);
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&xt=urn:btmh:1220{}&dn={ITEM}&tr={}",
        made.v1.unwrap(),
        made.v2_hex,
        tracker.http
    );
    let made = Made {
        torrent: PathBuf::from(magnet),
        ..made
    };
    download(&made, &seed_root, &dir.path().join("out"), &[]);
    assert_saved_with_layers(&dir.path().join("out"));
}

/// A v2-only torrent through opentracker: libtorrent announces its truncated v2 info-hash (whitelisted
/// like any 20-byte hash), pixtorrent announces the same and finds the seeder there.
#[test]
fn a_v2_only_torrent_through_opentracker() {
    let dir = tempfile::tempdir().unwrap();
    let seed_root = tree(&dir.path().join("seed"));
    let torrent = dir.path().join("v2.torrent");
    // The torrent is made once to learn its hash (the tracker URL is not in `info`), then again
    // with the tracker's URL.
    let Some(first) = lt_make(&seed_root, "v2", &torrent, None) else {
        return;
    };
    let Some(tracker) = Opentracker::start(&[first.v2]) else {
        return;
    };
    let made = lt_make(&seed_root, "v2", &torrent, Some(&tracker.http)).unwrap();
    assert_eq!(made.v2, first.v2);
    let Some(_seeder) = LtPeer::seed(&made.torrent, &dir.path().join("seed")) else {
        return;
    };
    wait_for_seeders(&tracker.http, made.v2, 1, TIMEOUT);
    download(&made, &seed_root, &dir.path().join("out"), &[]);
}

/// A hybrid through opentracker, both ids whitelisted: pixtorrent downloads, then seeds, and the
/// tracker counts it as a seeder in both swarms (the v1 one and the truncated v2 one).
#[test]
fn a_hybrid_is_announced_under_both_info_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let seed_root = tree(&dir.path().join("seed"));
    let torrent = dir.path().join("h.torrent");
    let Some(first) = lt_make(&seed_root, "hybrid", &torrent, None) else {
        return;
    };
    let v1 = first.v1.unwrap();
    let Some(tracker) = Opentracker::start(&[v1, first.v2]) else {
        return;
    };
    let made = lt_make(&seed_root, "hybrid", &torrent, Some(&tracker.http)).unwrap();
    let Some(_seeder) = LtPeer::seed(&made.torrent, &dir.path().join("seed")) else {
        return;
    };
    // libtorrent announces a hybrid under both ids too: one seeder in each swarm before ours.
    for id in [v1, made.v2] {
        wait_for_seeders(&tracker.http, id, 1, TIMEOUT);
        assert_eq!(common::scrape(&tracker.http, id).map(|s| s.0), Some(1));
    }
    let out = dir.path().join("out");
    let (mut px, _) = pixtorrent(
        "pixtorrent",
        &made.torrent,
        &out,
        LOCALHOST,
        &["--seed", "--seed-time", "60"],
    );
    for id in [v1, made.v2] {
        wait_for_seeders(&tracker.http, id, 2, TIMEOUT);
    }
    assert_same_tree(&seed_root, &out.join(ITEM));
    interrupt(&mut px);
}

/// `pixtorrent create --v2`, seeded by pixtorrent, downloaded by a libtorrent leecher.
#[test]
fn a_v2_torrent_made_and_seeded_by_pixtorrent_to_libtorrent() {
    if python_with_libtorrent().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let seed_root = tree(&dir.path().join("seed"));
    let torrent = dir.path().join("px-v2.torrent");
    let mut create = common::px();
    create
        .arg("create")
        .arg(&seed_root)
        .arg("-o")
        .arg(&torrent)
        .args(["--v2", "--piece-size", &PIECE.to_string()]);
    let mut made = Proc::spawn("pixtorrent create", create);
    expect_success(&mut made, TIMEOUT);
    // The torrent has no tracker: a `--peer` that never answers (the discard port) gives the
    // seeder a source, as pixtorrent refuses to start a torrent with none.
    let (mut seeder, addr) = pixtorrent(
        "pixtorrent seeder",
        &torrent,
        &dir.path().join("seed"),
        LOCALHOST,
        &["--seed", "--seed-time", "60", "--peer", "127.0.0.1:9"],
    );
    let out = dir.path().join("leech");
    std::fs::create_dir_all(&out).unwrap();
    let opts = LtOptions {
        seed: false,
        wait_tracker: false,
        exit_when_done: true,
        connect: vec![addr],
        ..LtOptions::default()
    };
    let Some(mut leecher) = LtPeer::start(&torrent, &out, &opts) else {
        return;
    };
    let done = leecher.proc.wait_line(TIMEOUT, |l| l.starts_with("DONE"));
    assert!(
        done.is_some(),
        "libtorrent did not finish\n{}\n{}",
        leecher.proc.dump(20),
        seeder.dump(20)
    );
    assert_same_tree(&seed_root, &out.join(ITEM));
    assert!(!out.join(ITEM).join(".pad").exists());
    interrupt(&mut seeder);
}

/// A libtorrent leecher given only a v2 magnet link (`urn:btmh:`) of a torrent pixtorrent seeds: it
/// takes the `info` by `ut_metadata`, then the piece layers of the files larger than a piece by BEP
/// 52 `hash request`s, which pixtorrent answers from its `.torrent`'s `piece layers`.
#[test]
fn a_libtorrent_leecher_given_a_v2_magnet_gets_the_piece_layers_from_pixtorrent() {
    let dir = tempfile::tempdir().unwrap();
    let seed_root = tree(&dir.path().join("seed"));
    let Some(made) = lt_make(&seed_root, "v2", &dir.path().join("v2.torrent"), None) else {
        return;
    };
    let (mut seeder, addr) = pixtorrent(
        "pixtorrent seeder",
        &made.torrent,
        &dir.path().join("seed"),
        LOCALHOST,
        &["--seed", "--seed-time", "60", "--peer", "127.0.0.1:9"],
    );
    let out = dir.path().join("leech");
    std::fs::create_dir_all(&out).unwrap();
    let opts = LtOptions {
        seed: false,
        wait_tracker: false,
        exit_when_done: true,
        connect: vec![addr],
        magnet: Some(format!("magnet:?xt=urn:btmh:1220{}&dn={ITEM}", made.v2_hex)),
        peer_log: true,
        ..LtOptions::default()
    };
    let Some(mut leecher) = LtPeer::start(&made.torrent, &out, &opts) else {
        return;
    };
    let done = leecher.proc.wait_line(TIMEOUT, |l| l.starts_with("DONE"));
    assert!(
        done.is_some(),
        "libtorrent did not finish\n{}\n{}",
        leecher.proc.dump(30),
        seeder.dump(20)
    );
    assert_same_tree(&seed_root, &out.join(ITEM));
    // libtorrent could also finish by checking each whole file against its root: the layers must
    // have come from us, one `hashes` reply per file larger than a piece (a.bin, b/d.bin, e.bin),
    // and no request rejected.
    let log = leecher.peer_log();
    let replies = log.iter().filter(|l| l.contains("<== HASHES")).count();
    assert!(
        replies >= 3 && !log.iter().any(|l| l.contains("HASH_REJECT")),
        "{}",
        log.join("\n")
    );
    interrupt(&mut seeder);
}

/// pixtorrent on both sides: a seeder of a libtorrent-made hybrid, and a leecher given only its
/// `btmh` magnet link, which takes the `info`, then the piece layers by `hash request` (answered
/// from the seeder's `.torrent`), then the data.
#[test]
fn a_pixtorrent_seeder_serves_a_v2_magnet_to_a_pixtorrent_leecher() {
    let dir = tempfile::tempdir().unwrap();
    let seed_root = tree(&dir.path().join("seed"));
    let Some(made) = lt_make(&seed_root, "hybrid", &dir.path().join("h.torrent"), None) else {
        return;
    };
    let (mut seeder, addr) = pixtorrent(
        "pixtorrent seeder",
        &made.torrent,
        &dir.path().join("seed"),
        LOCALHOST,
        &["--seed", "--seed-time", "60", "--peer", "127.0.0.1:9"],
    );
    // Until its start-up check is done the seeder drops connections; the leecher would try once.
    // (tests/tracker_interop.rs has the same wait, private to it.)
    let start = Instant::now();
    while !seeder.stderr().iter().any(|l| l.starts_with("seeding: ")) {
        assert!(
            start.elapsed() < TIMEOUT && seeder.try_status().is_none(),
            "the seeder is not seeding\n{}",
            seeder.dump(20)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let magnet = format!(
        "magnet:?xt=urn:btmh:1220{}&dn={ITEM}&x.pe={addr}",
        made.v2_hex
    );
    let made = Made {
        torrent: PathBuf::from(magnet),
        ..made
    };
    download(&made, &seed_root, &dir.path().join("out"), &[]);
    assert_saved_with_layers(&dir.path().join("out"));
    interrupt(&mut seeder);
}

/// Ctrl-C (SIGINT, by pid) to a seeding pixtorrent: it must exit 0.
fn interrupt(px: &mut Proc) {
    let pid = px.pid().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let status = px.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "pixtorrent did not stop cleanly: {status:?}\n{}",
        px.dump(20)
    );
}

/// A v2 `.torrent` without `piece layers` cannot be checked (only a magnet link's layers are
/// fetched from peers), and a malformed v2 magnet link is refused: each is one `error:`
/// line and status 1, before any connection.
#[test]
fn what_v2_cannot_do_yet_is_one_line_each() {
    use pixtorrent::bencode::{decode, Limits};
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v2/v2-multi.torrent");
    let bytes = std::fs::read(fixture).unwrap();
    let mut t = decode(&bytes, Limits::TORRENT).unwrap().root().to_value();
    assert!(t.remove("piece layers").is_some());
    let bare = dir.path().join("bare.torrent");
    std::fs::write(&bare, t.encode()).unwrap();
    let magnet = format!("magnet:?xt=urn:btmh:1114{}", "ab".repeat(32));
    let cases = [
        (bare.display().to_string(), "no `piece layers`"),
        (magnet, "is not a v2 info-hash"),
    ];
    for (source, want) in cases {
        let out = common::px()
            .args(["-t", &source, "-o"])
            .arg(dir.path().join("out"))
            .args(["--peer", "127.0.0.1:9"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{source}: {err}");
        assert_eq!(err.lines().count(), 1, "{source}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(want),
            "{source}: {err}"
        );
    }
}
