//! Unit tests of the v2 side: the committed fixtures made by python3-libtorrent
//! (`tests/data/v2/make_fixtures.py`) against libtorrent's own figures and against the Merkle trees of
//! their regenerated contents; then each file-tree, piece-layer and hybrid rule on torrents edited in
//! memory.

use serde_json::Value as Json;
use sha1::Digest;

use crate::bencode::{decode, Limits, Value};
use crate::merkle;
use crate::metainfo::{MetaVersion, Metainfo, MetainfoError};
use crate::types::hex;

const EXPECTED: &str = include_str!("../../../tests/data/v2/expected.json");

fn fixture(name: &str) -> &'static [u8] {
    match name {
        "v2-single" => include_bytes!("../../../tests/data/v2/v2-single.torrent"),
        "v2-multi" => include_bytes!("../../../tests/data/v2/v2-multi.torrent"),
        "v2-16k" => include_bytes!("../../../tests/data/v2/v2-16k.torrent"),
        "hybrid-single" => include_bytes!("../../../tests/data/v2/hybrid-single.torrent"),
        "hybrid-multi" => include_bytes!("../../../tests/data/v2/hybrid-multi.torrent"),
        _ => unreachable!("no fixture {name}"),
    }
}

const FIXTURES: [&str; 5] = [
    "v2-single",
    "v2-multi",
    "v2-16k",
    "hybrid-single",
    "hybrid-multi",
];

fn expected(name: &str) -> Json {
    let all: Json = serde_json::from_str(EXPECTED).unwrap();
    all[name].clone()
}

/// The fixture generator's file contents: byte i = (i * 31 + seed * 17 + (i >> 14)) mod 251.
fn content(len: u64, seed: u64) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 17 + (i >> 14)) % 251) as u8)
        .collect()
}

fn any(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
    Metainfo::from_bytes_any_version(bytes)
}

/// The path libtorrent prints: `name/...` for a multi-file torrent.
fn lt_path(m: &Metainfo, i: usize) -> String {
    m.info.file_path(i).unwrap().to_string_lossy().into_owned()
}

#[test]
fn fixtures_match_libtorrent() {
    for name in FIXTURES {
        let m = any(fixture(name)).unwrap();
        let e = expected(name);
        let v2 = m.info_hash_v2.expect("a v2 info-hash");
        assert_eq!(v2.to_hex(), e["v2"].as_str().unwrap(), "{name}");
        if name.starts_with("hybrid") {
            assert_eq!(m.info.version(), MetaVersion::Hybrid, "{name}");
            assert_eq!(m.info_hash.to_hex(), e["v1"].as_str().unwrap(), "{name}");
        } else {
            assert_eq!(m.info.version(), MetaVersion::V2, "{name}");
            assert!(e["v1"].is_null());
            assert_eq!(m.info_hash, v2.truncated(), "{name}");
            assert!(m.info.piece_hashes.is_empty());
        }
        assert_eq!(
            u64::from(m.info.lengths.piece_count()),
            e["num_pieces"].as_u64().unwrap(),
            "{name}"
        );
        assert!(m.info.has_piece_layers());
        assert!(m.info.v2_set_aside().is_none());
        // Every file libtorrent lists (pad files aside) is ours, same offset, size and root.
        for f in e["files"].as_array().unwrap() {
            if f["pad"].as_bool().unwrap() {
                continue;
            }
            let path = f["path"].as_str().unwrap();
            let i = (0..m.info.files.len())
                .find(|&i| lt_path(&m, i) == path)
                .unwrap_or_else(|| panic!("{name}: no {path}"));
            let ours = &m.info.files[i];
            assert_eq!(ours.length, f["size"].as_u64().unwrap(), "{name} {path}");
            assert_eq!(ours.offset, f["offset"].as_u64().unwrap(), "{name} {path}");
            let root = m.info.pieces_root(i).map(|r| hex(&r));
            assert_eq!(root.as_deref(), f["root"].as_str(), "{name} {path}");
        }
    }
}

#[test]
fn fixture_trees_match_their_regenerated_contents() {
    for name in FIXTURES {
        let m = any(fixture(name)).unwrap();
        let info = &m.info;
        let pl = info.lengths.piece_length();
        let contents = expected(name)["contents"].as_array().unwrap().clone();
        let mut data_files = info.files.iter().enumerate().filter(|(_, f)| !f.attr.pad);
        for c in &contents {
            let (len, seed) = (c[1].as_u64().unwrap(), c[2].as_u64().unwrap());
            let (i, f) = data_files.next().unwrap();
            assert_eq!(f.length, len, "{name} file {i}");
            let data = content(len, seed);
            assert_eq!(info.pieces_root(i), merkle::file_root(&data), "{name} {i}");
            let layer = merkle::piece_layer(&data, pl).unwrap();
            assert_eq!(info.piece_layer(i).unwrap_or(&[]), &layer[..], "{name} {i}");
        }
        // Every v2 piece's bytes hash to the hash the torrent gives for it.
        let mut pieces = 0;
        for (index, p) in info.v2_pieces().enumerate() {
            let c = &contents[data_index(info, p.file)];
            let data = content(c[1].as_u64().unwrap(), c[2].as_u64().unwrap());
            let bytes = &data[p.offset as usize..p.offset as usize + p.len as usize];
            let want = info.v2_piece_hash(index as u32).unwrap();
            assert_eq!(
                merkle::piece_root(bytes, p.height),
                Some(want),
                "{name} {index}"
            );
            pieces += 1;
        }
        assert_eq!(pieces, info.lengths.piece_count(), "{name}");
    }
}

/// The position of file `i` among the files that are not padding.
fn data_index(info: &crate::metainfo::Info, i: usize) -> usize {
    info.files[..i].iter().filter(|f| !f.attr.pad).count()
}

#[test]
fn a_hybrid_keeps_its_v1_side_and_a_v2_only_one_is_refused_for_download() {
    let m = Metainfo::from_bytes(fixture("hybrid-multi")).unwrap();
    assert_eq!(m.info.version(), MetaVersion::Hybrid);
    assert!(m.info.hybrid);
    assert_eq!(m.info.piece_hashes.len(), 12);
    // The v1 stream (pad files as zeros) hashes to the v1 piece hashes.
    let contents = expected("hybrid-multi")["contents"].clone();
    let mut stream = Vec::new();
    let mut next = contents.as_array().unwrap().iter();
    for f in &m.info.files {
        if f.attr.pad {
            stream.resize(stream.len() + f.length as usize, 0);
        } else {
            let c = next.next().unwrap();
            stream.extend(content(c[1].as_u64().unwrap(), c[2].as_u64().unwrap()));
        }
    }
    for (i, piece) in stream.chunks(32768).enumerate() {
        let sha: [u8; 20] = sha1::Sha1::digest(piece).into();
        assert_eq!(sha, m.info.piece_hashes[i], "v1 piece {i}");
    }
    for name in ["v2-single", "v2-multi", "v2-16k"] {
        assert_eq!(
            Metainfo::from_bytes(fixture(name)).unwrap_err(),
            MetainfoError::V2Only
        );
    }
    // A v1 torrent has no v2 side.
    let (v1, _) = crate::metainfo::testkit::multi_file("t", &[("a", vec![1; 9])], 16384);
    assert_eq!(v1.info.version(), MetaVersion::V1);
    assert_eq!(v1.info_hash_v2, None);
    assert_eq!(v1.info.v2_piece(0), None);
    assert_eq!(v1.info.v2_pieces().count(), 0);
    assert_eq!(v1.info.pieces_root(0), None);
}

#[test]
fn the_v2_layout_never_spans_files() {
    let m = any(fixture("v2-multi")).unwrap();
    let i = &m.info;
    let layout: Vec<(String, u32, u64, u32)> = i
        .v2_pieces()
        .map(|p| {
            (
                i.files[p.file].display_path(),
                p.index_in_file,
                p.offset,
                p.len,
            )
        })
        .collect();
    let piece = |p: &str, k: u32, len: u32| (p.to_string(), k, u64::from(k) * 32768, len);
    let mut want = vec![
        piece("a.bin", 0, 32768),
        piece("a.bin", 1, 32768),
        piece("a.bin", 2, 70000 - 65536),
        piece("b.txt", 0, 5),
        piece("sub/c.bin", 0, 32768),
    ];
    want.extend((0..6).map(|k| piece("sub/d.bin", k, 32768)));
    want.push(piece("sub/d.bin", 6, 200_000 - 6 * 32768));
    want.push(piece("z-block.bin", 0, 16384));
    assert_eq!(layout, want);
    assert_eq!(i.v2_piece(13), None);
    // Heights: the piece layer for a.bin and d.bin, each small file's own root.
    assert_eq!(i.v2_piece(0).unwrap().height, 1);
    assert_eq!(i.v2_piece(3).unwrap().height, 0);
    assert_eq!(i.v2_piece(4).unwrap().height, 1);
    assert_eq!(i.v2_piece(12).unwrap().height, 0);
    // v2-only files come with the pad files a hybrid would have; the empty file has no root.
    let pads: Vec<u64> = i
        .files
        .iter()
        .filter(|f| f.attr.pad)
        .map(|f| f.length)
        .collect();
    assert_eq!(pads, [28304, 32763, 29376]);
    let empty = i.files.iter().position(|f| f.path == ["empty"]).unwrap();
    assert_eq!(i.pieces_root(empty), None);
    assert!(i.multi_file);
    assert_eq!(i.lengths.total(), 409_600);
    // A single-file v2 torrent: its path is its tree key.
    let s = any(fixture("v2-single")).unwrap();
    assert!(!s.info.multi_file);
    assert_eq!(s.info.files.len(), 1);
    assert_eq!(s.info.file_path(0).unwrap().to_str(), Some("single.bin"));
}

/// `torrent` decoded to an editable value.
fn value(torrent: &[u8]) -> Value {
    decode(torrent, Limits::TORRENT).unwrap().root().to_value()
}

fn layers_of(t: &mut Value) -> &mut std::collections::BTreeMap<Vec<u8>, Value> {
    match t.get_mut("piece layers") {
        Some(Value::Dict(d)) => d,
        _ => unreachable!(),
    }
}

/// The piece layer of the file whose root starts with `prefix`.
fn layer_of<'v>(t: &'v mut Value, prefix: &str) -> &'v mut Vec<u8> {
    let (_, v) = layers_of(t)
        .iter_mut()
        .find(|(k, _)| hex(k).starts_with(prefix))
        .unwrap();
    match v {
        Value::Bytes(b) => b,
        _ => unreachable!(),
    }
}

#[test]
fn piece_layers_must_hash_up_to_their_roots() {
    let good = value(fixture("v2-multi"));
    // a.bin's root starts fec78c26, d.bin's afacd11e (expected.json).
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 4] = [
        (
            "truncated",
            |t| {
                layer_of(t, "afacd11e").truncate(6 * 32);
            },
            "does not have one hash per piece",
        ),
        (
            "one hash too many",
            |t| layer_of(t, "fec78c26").extend([0; 32]),
            "does not have one hash per piece",
        ),
        (
            "wrong hash",
            |t| layer_of(t, "afacd11e")[40] ^= 1,
            "does not hash up to the file's `pieces root`",
        ),
        (
            "missing",
            |t| {
                layers_of(t).retain(|k, _| !hex(k).starts_with("fec78c26"));
            },
            "is missing",
        ),
    ];
    for (what, edit, why) in cases {
        let mut t = good.clone();
        edit(&mut t);
        match any(&t.encode()) {
            Err(MetainfoError::PieceLayer { why: got, .. }) => assert_eq!(got, why, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    // Entries of the wrong shape are skipped, and so are entries for no file.
    let mut t = good.clone();
    layers_of(&mut t).insert(b"short key".to_vec(), Value::Bytes(vec![0; 32]));
    layers_of(&mut t).insert(vec![9; 32], Value::Bytes(vec![0; 33]));
    layers_of(&mut t).insert(vec![8; 32], Value::Int(3));
    assert!(any(&t.encode()).is_ok());
    t.insert("piece layers", Value::Int(1));
    assert!(matches!(
        any(&t.encode()),
        Err(MetainfoError::WrongType { .. })
    ));
    // Without `piece layers` (as after a magnet link) the layers are unknown, the roots known.
    let mut t = good;
    t.remove("piece layers");
    let m = any(&t.encode()).unwrap();
    assert!(!m.info.has_piece_layers());
    assert_eq!(m.info.piece_layer(0), None);
    assert_eq!(m.info.v2_piece_hash(0), None, "a.bin needs its layer");
    assert_eq!(
        m.info.v2_piece_hash(3),
        m.info.pieces_root(2),
        "b.txt is its own root"
    );
}

#[test]
fn a_hybrid_with_a_bad_v2_side_falls_back_to_v1() {
    let mut t = value(fixture("hybrid-multi"));
    layer_of(&mut t, "afacd11e")[0] ^= 1;
    let m = Metainfo::from_bytes(&t.encode()).unwrap();
    assert_eq!(m.info.version(), MetaVersion::V1);
    assert!(m.info.hybrid, "it still declares meta version 2");
    assert!(matches!(
        m.info.v2_set_aside(),
        Some(MetainfoError::PieceLayer { .. })
    ));
    assert_eq!(m.info_hash_v2, None);
    assert_eq!(
        m.info_hash.to_hex(),
        expected("hybrid-multi")["v1"].as_str().unwrap()
    );
    assert_eq!(m.info.pieces_root(0), None);
}

/// The v1 `files` list of a hybrid, to edit.
fn v1_files(t: &mut Value) -> &mut Vec<Value> {
    match t.get_mut("info").and_then(|i| i.get_mut("files")) {
        Some(Value::List(l)) => l,
        _ => unreachable!(),
    }
}

fn set_aside(t: &Value) -> Option<MetainfoError> {
    let m = Metainfo::from_bytes(&t.encode()).unwrap();
    assert_eq!(
        m.info.version() == MetaVersion::V1,
        m.info.v2_set_aside().is_some()
    );
    m.info.v2_set_aside().cloned()
}

#[test]
fn a_hybrids_two_file_lists_must_agree() {
    let good = value(fixture("hybrid-multi"));
    assert_eq!(set_aside(&good), None);
    // Without the tail pad (hybrids from libtorrent before 2.0.?): still the same bytes.
    let mut t = good.clone();
    v1_files(&mut t).pop();
    assert_eq!(set_aside(&t), None);
    let inconsistent = |edit: fn(&mut Vec<Value>)| {
        let mut t = good.clone();
        edit(v1_files(&mut t));
        set_aside(&t)
    };
    type Edit = fn(&mut Vec<Value>);
    let cases: [(&str, Edit); 4] = [
        ("renamed", |f| {
            f[0].insert("path", Value::List(vec![Value::str("other.bin")]))
        }),
        ("a pad file one byte short", |f| {
            f[1].insert("length", Value::Int(28303));
            f[2].insert("length", Value::Int(6));
        }),
        ("two files swapped", |f| f.swap(5, 6)),
        ("a file dropped", |f| {
            f.remove(2);
            f[2].insert("length", Value::Int(32768));
        }),
    ];
    for (what, edit) in cases {
        assert!(
            matches!(inconsistent(edit), Some(MetainfoError::Inconsistent(_))),
            "{what}"
        );
    }
    // An empty file may sit anywhere: only files holding data are compared.
    let mut t = good.clone();
    let empty = v1_files(&mut t).remove(4);
    v1_files(&mut t).insert(0, empty);
    assert_eq!(set_aside(&t), None);
    // Padding past the next piece boundary is a different stream.
    let mut t = good;
    v1_files(&mut t)
        .last_mut()
        .unwrap()
        .insert("length", Value::Int(29376 + 32768));
    let pieces = vec![0u8; 13 * 20];
    t.get_mut("info")
        .unwrap()
        .insert("pieces", Value::Bytes(pieces));
    assert!(matches!(
        set_aside(&t),
        Some(MetainfoError::Inconsistent(_))
    ));
}
