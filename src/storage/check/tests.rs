//! The piece check on the committed BEP 52 fixtures (made by python3-libtorrent,
//! `tests/data/v2/make_fixtures.py`) with their regenerated contents, and on torrents made in memory.

use serde_json::Value as Json;

use super::*;
use crate::metainfo::Metainfo;

const EXPECTED: &str = include_str!("../../../tests/data/v2/expected.json");

fn fixture(name: &str) -> Metainfo {
    let bytes: &[u8] = match name {
        "v2-single" => include_bytes!("../../../tests/data/v2/v2-single.torrent"),
        "v2-multi" => include_bytes!("../../../tests/data/v2/v2-multi.torrent"),
        "v2-16k" => include_bytes!("../../../tests/data/v2/v2-16k.torrent"),
        "hybrid-single" => include_bytes!("../../../tests/data/v2/hybrid-single.torrent"),
        "hybrid-multi" => include_bytes!("../../../tests/data/v2/hybrid-multi.torrent"),
        _ => unreachable!("no fixture {name}"),
    };
    Metainfo::from_bytes_any_version(bytes).unwrap()
}

const FIXTURES: [&str; 5] = [
    "v2-single",
    "v2-multi",
    "v2-16k",
    "hybrid-single",
    "hybrid-multi",
];

/// The fixture generator's file contents: byte i = (i * 31 + seed * 17 + (i >> 14)) mod 251.
fn content(len: u64, seed: u64) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 17 + (i >> 14)) % 251) as u8)
        .collect()
}

/// The torrent's whole byte stream as the storage layout sees it: files in order, pad files as
/// zeros.
fn stream(name: &str, info: &Info) -> Vec<u8> {
    let all: Json = serde_json::from_str(EXPECTED).unwrap();
    let contents = all[name]["contents"].as_array().unwrap().clone();
    let mut data_files = contents.iter();
    let mut out = Vec::new();
    for f in &info.files {
        assert_eq!(out.len() as u64, f.offset, "{name}: offsets");
        if f.attr.pad {
            out.resize(out.len() + f.length as usize, 0);
        } else {
            let c = data_files.next().unwrap();
            assert_eq!(c[1].as_u64().unwrap(), f.length, "{name}");
            out.extend(content(f.length, c[2].as_u64().unwrap()));
        }
    }
    assert!(data_files.next().is_none(), "{name}: every file placed");
    assert_eq!(out.len() as u64, info.lengths.total(), "{name}");
    out
}

/// Piece `i` of `data` as the layout cuts it.
fn piece<'d>(info: &Info, data: &'d [u8], i: u32) -> &'d [u8] {
    let p = info.lengths.piece(i).unwrap();
    let start = info.lengths.piece_offset(p) as usize;
    &data[start..start + info.lengths.piece_len(p) as usize]
}

#[test]
fn every_piece_of_every_fixture_passes_and_a_flipped_byte_fails_it() {
    for name in FIXTURES {
        let m = fixture(name);
        let info = &m.info;
        let check = PieceCheck::for_info(info).unwrap();
        let want_v1 = info.version() != MetaVersion::V2;
        assert_eq!(!check.v1.is_empty(), want_v1, "{name}");
        assert_eq!(check.v2.len() as u32, info.lengths.piece_count(), "{name}");
        let data = stream(name, info);
        for i in 0..info.lengths.piece_count() {
            // A v2 piece starts where the layout's piece starts: files are piece-aligned.
            let v2 = info.v2_piece(i).unwrap();
            let file_start = info.files[v2.file].offset + v2.offset;
            assert_eq!(
                file_start,
                info.lengths.piece_offset(info.lengths.piece(i).unwrap()),
                "{name} piece {i}"
            );
            let good = piece(info, &data, i).to_vec();
            assert!(check.matches(i, &good), "{name} piece {i}");
            // A flipped byte of the file's own data fails either way; the first and the last.
            for at in [0, v2.len as usize - 1] {
                let mut bad = good.clone();
                bad[at] ^= 1;
                assert!(!check.matches(i, &bad), "{name} piece {i} byte {at}");
            }
        }
        assert!(!check.matches(info.lengths.piece_count(), &[]), "{name}");
    }
}

#[test]
fn pad_bytes_count_for_a_hybrid_only() {
    for (name, judged) in [("v2-multi", false), ("hybrid-multi", true)] {
        let m = fixture(name);
        let info = &m.info;
        let check = PieceCheck::for_info(info).unwrap();
        let data = stream(name, info);
        // Piece 2 is a.bin's last: 70,000 - 65,536 bytes, then its pad to 32 KiB.
        let p = info.v2_piece(2).unwrap();
        assert_eq!((p.index_in_file, p.len), (2, 70_000 - 65_536), "{name}");
        let mut padded = piece(info, &data, 2).to_vec();
        assert_eq!(
            padded.len(),
            32_768,
            "{name}: the layout's piece holds the pad"
        );
        *padded.last_mut().unwrap() = 0xff;
        assert_eq!(check.matches(2, &padded), !judged, "{name}");
    }
}

#[test]
fn a_v2_piece_is_checked_at_its_height_small_files_against_their_root() {
    let m = fixture("v2-multi");
    let info = &m.info;
    let check = PieceCheck::for_info(info).unwrap();
    // b.txt (5 bytes, its own piece) is checked against its pieces root, a tree of one leaf.
    let (i, b) = (0..info.lengths.piece_count())
        .map(|i| (i, info.v2_piece(i).unwrap()))
        .find(|(_, p)| info.files[p.file].length == 5)
        .unwrap();
    assert_eq!(b.height, 0);
    let e = check.v2[i as usize].unwrap();
    assert_eq!(Some(e.hash), info.pieces_root(b.file));
    assert_eq!(e.len, 5);
    // A piece of d.bin (200,000 bytes, 7 pieces) against its piece layer, two blocks high.
    let (j, d) = (0..info.lengths.piece_count())
        .map(|i| (i, info.v2_piece(i).unwrap()))
        .find(|(_, p)| info.files[p.file].length == 200_000)
        .unwrap();
    assert_eq!(d.height, 1);
    assert_eq!(
        Some(check.v2[j as usize].unwrap().hash),
        info.piece_layer(d.file).map(|l| l[0])
    );
}

#[test]
fn a_hybrid_piece_fails_when_either_hash_disagrees() {
    let m = fixture("hybrid-multi");
    let info = &m.info;
    let data = stream("hybrid-multi", info);
    let good = piece(info, &data, 0).to_vec();
    let check = PieceCheck::for_info(info).unwrap();
    assert!(check.matches(0, &good));
    let mut wrong_v2 = check.clone();
    if let Some(Some(e)) = wrong_v2.v2.get_mut(0) {
        e.hash[0] ^= 1;
    }
    assert!(!wrong_v2.matches(0, &good), "v1 agrees, v2 does not");
    let mut wrong_v1 = check.clone();
    wrong_v1.v1[0][0] ^= 1;
    assert!(!wrong_v1.matches(0, &good), "v2 agrees, v1 does not");
    // With no v2 hash known for it (a magnet's metadata), the v1 hash decides.
    let mut unknown = check.clone();
    unknown.v2[0] = None;
    assert!(unknown.matches(0, &good));
    unknown.v1[0][0] ^= 1;
    assert!(!unknown.matches(0, &good));
}

#[test]
fn a_v1_torrent_is_checked_by_sha1_alone() {
    let (m, data) = crate::metainfo::testkit::multi_file(
        "t",
        &[("a", content(40_000, 1)), ("b", content(9_000, 2))],
        16_384,
    );
    let check = PieceCheck::for_info(&m.info).unwrap();
    assert_eq!(check, PieceCheck::v1(m.info.piece_hashes.clone()));
    for i in 0..m.info.lengths.piece_count() {
        let mut p = piece(&m.info, &data, i).to_vec();
        assert!(check.matches(i, &p));
        p[0] ^= 1;
        assert!(!check.matches(i, &p));
    }
    assert!(!PieceCheck::v1(Vec::new()).matches(0, &[]));
}

#[test]
fn a_v2_torrent_without_piece_layers_cannot_be_checked() {
    let bytes = include_bytes!("../../../tests/data/v2/v2-multi.torrent");
    let m = without_piece_layers(bytes);
    assert!(!m.info.has_piece_layers());
    let err = PieceCheck::for_info(&m.info).unwrap_err();
    assert!(
        matches!(&err, CheckError::NoPieceHash { piece: 0, file } if file.ends_with("a.bin")),
        "{err}"
    );
    // A hybrid without them is checked by SHA-1, and by v2 where a small file's root tells.
    let bytes = include_bytes!("../../../tests/data/v2/hybrid-multi.torrent");
    let m = without_piece_layers(bytes);
    let check = PieceCheck::for_info(&m.info).unwrap();
    assert!(check.v2[0].is_none(), "a.bin has no layer");
    assert!(check.v2.iter().any(Option::is_some), "b.txt has its root");
    let data = stream("hybrid-multi", &m.info);
    for i in 0..m.info.lengths.piece_count() {
        assert!(check.matches(i, piece(&m.info, &data, i)), "piece {i}");
    }
}

/// `torrent` read back without its `piece layers` (as a magnet's metadata comes).
fn without_piece_layers(torrent: &[u8]) -> Metainfo {
    use crate::bencode::{decode, Limits};
    let mut t = decode(torrent, Limits::TORRENT).unwrap().root().to_value();
    assert!(t.remove("piece layers").is_some());
    Metainfo::from_bytes_any_version(&t.encode()).unwrap()
}

#[test]
fn the_recheck_of_a_v2_torrent_finds_exactly_the_good_pieces() {
    use crate::bitfield::Bitfield;
    use crate::storage::memory::MemoryStorage;
    use crate::storage::{recheck, Layout, Storage};
    for name in ["v2-multi", "hybrid-multi"] {
        let m = fixture(name);
        let info = &m.info;
        let data = stream(name, info);
        let store = MemoryStorage::new(Layout::new(info));
        let n = info.lengths.piece_count();
        // Every piece stored but piece 1, and piece 3 stored with one byte of its file wrong.
        for i in (0..n).filter(|&i| i != 1) {
            let mut p = piece(info, &data, i).to_vec();
            if i == 3 {
                p[0] ^= 0x80;
            }
            store
                .write_piece(info.lengths.piece(i).unwrap(), &p)
                .unwrap();
        }
        let check = PieceCheck::for_info(info).unwrap();
        let got = recheck(&store, &check, &Bitfield::full(n), 2);
        let want: Vec<u32> = (0..n).filter(|&i| i != 1 && i != 3).collect();
        assert_eq!(got.ones().collect::<Vec<_>>(), want, "{name}");
    }
}
