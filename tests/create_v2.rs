//! `pixtorrent create --v2` and `--hybrid` checked against python3-libtorrent 2.0's `create_torrent`
//! (`tests/peers/lt_create_v2.py`): for the same tree and piece size the `info` dictionaries are
//! byte-identical (so the v1 and v2 info-hashes are equal) and so are the `piece layers`; both
//! pixtorrent and libtorrent read pixtorrent's torrent, and libtorrent's check of the files against it
//! finds every piece (v2 Merkle trees; v1 SHA-1 too for a hybrid).

mod common;

use std::path::Path;
use std::process::Command;

use pixtorrent::bencode::{decode, Limits};
use pixtorrent::metainfo::{MetaVersion, Metainfo};

use common::seeders::python_with_libtorrent;

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 14) as u8)
        .collect()
}

/// The raw bytes of `key` at the top of a torrent.
fn raw(torrent: &[u8], key: &[u8]) -> Vec<u8> {
    let doc = decode(torrent, Limits::TORRENT).unwrap();
    doc.root().get(key).map(|n| n.raw().to_vec()).unwrap()
}

/// Creates `path` with pixtorrent and with libtorrent and compares; `kind` is "v2" or "hybrid";
/// `save` is where libtorrent finds the files of pixtorrent's torrent.
fn compare(python: &Path, path: &Path, piece: u32, kind: &str, save: &Path) {
    let dir = path.parent().unwrap();
    let ours = dir.join(format!("ours-{kind}-{piece}.torrent"));
    let theirs = dir.join(format!("theirs-{kind}-{piece}.torrent"));
    let o = common::px()
        .arg("create")
        .arg(path)
        .arg("-o")
        .arg(&ours)
        .args(["--piece-size", &piece.to_string(), &format!("--{kind}")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = String::from_utf8_lossy(&o.stdout).into_owned();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/lt_create_v2.py");
    let lt = Command::new(python)
        .arg(script)
        .arg(path)
        .arg(piece.to_string())
        .arg(kind)
        .arg(&ours)
        .arg(&theirs)
        .arg(save)
        .output()
        .unwrap();
    assert!(
        lt.status.success(),
        "{}",
        String::from_utf8_lossy(&lt.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&lt.stdout).unwrap();
    let what = format!("{} {kind} {piece}", path.display());

    let ours_bytes = std::fs::read(&ours).unwrap();
    let theirs_bytes = std::fs::read(&theirs).unwrap();
    let mine = Metainfo::from_bytes_any_version(&ours_bytes).unwrap();
    let lts = Metainfo::from_bytes_any_version(&theirs_bytes).unwrap();
    assert_eq!(mine.info_bytes, lts.info_bytes, "info dictionaries: {what}");
    assert_eq!(
        raw(&ours_bytes, b"piece layers"),
        raw(&theirs_bytes, b"piece layers"),
        "piece layers: {what}"
    );

    // The info-hashes libtorrent computes, of its torrent and of ours, and pixtorrent's of ours.
    let v2 = mine.info_hash_v2.unwrap().to_hex();
    assert_eq!(report["theirs"]["v2"], v2.as_str(), "{what}");
    assert_eq!(report["ours"]["v2"], v2.as_str(), "{what}");
    if kind == "hybrid" {
        assert_eq!(mine.info.version(), MetaVersion::Hybrid, "{what}");
        let v1 = mine.info_hash.to_hex();
        assert_eq!(report["theirs"]["v1"], v1.as_str(), "{what}");
        assert_eq!(report["ours"]["v1"], v1.as_str(), "{what}");
        assert!(summary.contains(&v1) && summary.contains(&v2), "{summary}");
        // What downloads read: the v1 side of a hybrid.
        assert!(Metainfo::from_bytes(&ours_bytes).is_ok());
    } else {
        assert_eq!(mine.info.version(), MetaVersion::V2, "{what}");
        assert!(report["ours"]["v1"].is_null() && report["theirs"]["v1"].is_null());
        assert!(summary.contains(&v2), "{summary}");
    }
    assert_eq!(report["ours"]["files"], report["theirs"]["files"], "{what}");
    assert_eq!(report["ours"]["num_pieces"], report["theirs"]["num_pieces"]);

    // libtorrent checks the files against pixtorrent's torrent: every piece passes.
    let check = &report["check"];
    assert!(check["error"].is_null(), "{what}: {check}");
    assert_eq!(check["have"], check["pieces"], "{what}: {check}");
    assert!(check["pieces"].as_u64().unwrap() > 0);
}

#[test]
fn create_v2_and_hybrid_match_libtorrent() {
    let Some(python) = python_with_libtorrent() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("IA_Item");
    let files: [(&str, usize); 8] = [
        // Several pieces, not a multiple of either piece size; in a nested directory.
        ("Content/movie.mp4", 200_001),
        // Exactly one 32 KiB piece (two 16 KiB ones), one level deeper.
        ("Content/sub/deep.bin", 32_768),
        // Smaller than a piece; sorts after the directory `Content` (by component, as libtorrent
        // sorts, not by whole path, where `.` comes before `/`).
        ("Content.txt", 1431),
        // Empty: no pieces root, no pad, still listed.
        ("empty.txt", 0),
        // Upper case sorts first (byte order).
        ("B.txt", 5),
        // Exactly one 16 KiB block; an empty file right after an unaligned one.
        ("a-block.bin", 16_384),
        ("a-empty", 0),
        // Last, ends off a boundary: the hybrid's tail pad.
        ("z-last.bin", 16_385),
    ];
    for (i, (path, len)) in files.iter().enumerate() {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, bytes(*len, i as u8)).unwrap();
    }
    for piece in [16_384, 32_768] {
        for kind in ["v2", "hybrid"] {
            compare(&python, &root, piece, kind, dir.path());
        }
    }
    // A single file, and a directory holding one file: the same torrent as libtorrent's, which for
    // v2 only names the directory but holds the file at the top of its tree, so readers (libtorrent
    // too) take it for that single file, found in the directory itself.
    let single = root.join("Content/movie.mp4");
    let only = dir.path().join("Only");
    std::fs::create_dir_all(&only).unwrap();
    std::fs::write(only.join("one.bin"), bytes(70_000, 9)).unwrap();
    for kind in ["v2", "hybrid"] {
        compare(&python, &single, 32_768, kind, &root.join("Content"));
        let save = if kind == "v2" { &only } else { dir.path() };
        compare(&python, &only, 32_768, kind, save);
    }
}

#[test]
fn v2_and_hybrid_conflict() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"data").unwrap();
    let o = common::px()
        .arg("create")
        .arg(dir.path().join("f"))
        .arg("-o")
        .arg(dir.path().join("f.torrent"))
        .args(["--v2", "--hybrid"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be used with"));
    assert!(!dir.path().join("f.torrent").exists());
}
