//! Tests of `create --v2` / `--hybrid`: pad placement and piece units (pure), roots and layers
//! against the Merkle functions, the `info` layout (single file, empty files, pads, `piece layers`),
//! and byte-identical `info` dictionaries with the committed libtorrent fixtures (`tests/data/v2`).

use std::path::Path;

use serde_json::Value as Json;

use super::*;
use crate::bencode::{decode, Limits};
use crate::create::{create, CreateOptions, Format};
use crate::metainfo::{MetaVersion, Metainfo};
use crate::storage::hash_matches;

const PL: u32 = 32768;

/// The fixture generator's file contents: byte i = (i * 31 + seed * 17 + (i >> 14)) mod 251.
fn content(len: u64, seed: u64) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 17 + (i >> 14)) % 251) as u8)
        .collect()
}

/// Writes `files` (path below `root`, length, seed of [`content`]).
fn tree(root: &Path, files: &[(&str, u64, u64)]) {
    for (path, len, seed) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content(*len, *seed)).unwrap();
    }
}

fn make(path: &Path, format: Format, piece: u32) -> Metainfo {
    let opts = CreateOptions {
        piece_length: Some(piece),
        format,
        ..CreateOptions::default()
    };
    let made = create(path, &opts, &|_| {}).unwrap();
    Metainfo::from_bytes_any_version(&made.bytes).unwrap()
}

/// The `info` dictionary of `bytes`, decoded.
fn info_of(bytes: &[u8]) -> Value {
    decode(bytes, Limits::TORRENT).unwrap().root().to_value()
}

fn get<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| match v {
        Value::Dict(m) => m.get(k.as_bytes()),
        _ => None,
    })
}

#[test]
fn pads_follow_libtorrent() {
    // The hybrid-multi fixture: a pad after each file that ends off a boundary, the last one too.
    assert_eq!(
        pads(&[70000, 5, 0, 32768, 200000], PL),
        vec![28304, 32763, 0, 0, 29376]
    );
    // One file, alone or in a directory: no pad at all.
    assert_eq!(pads(&[100000], PL), vec![0]);
    // An empty file gets none, wherever it is; it still makes the torrent a several-file one.
    assert_eq!(pads(&[0, 40000, 5], PL), vec![0, 25536, 32763]);
    assert_eq!(pads(&[40000, 0], PL), vec![25536, 0]);
    assert_eq!(pads(&[PL as u64, 2 * PL as u64], PL), vec![0, 0]);
}

#[test]
fn units_split_each_file_at_its_own_piece_boundaries() {
    let lengths = [70000, 0, 5, 32768];
    let u = units(&lengths, PL);
    let got: Vec<(usize, u64, u32)> = u.iter().map(|u| (u.file, u.offset, u.len)).collect();
    assert_eq!(
        got,
        vec![
            (0, 0, 32768),
            (0, 32768, 32768),
            (0, 65536, 4464),
            (2, 0, 5),
            (3, 0, 32768)
        ]
    );
    assert_eq!(piece_count(&lengths, PL), u.len() as u64);
}

#[test]
fn roots_and_layers_match_the_merkle_functions() {
    // Larger than a piece, exactly a piece, a block, less, empty; and 16 KiB pieces (layer = leaves).
    for piece in [PL, 16384] {
        let datas: Vec<Vec<u8>> = [70000u64, 32768, 16384, 5, 0]
            .iter()
            .zip(1..)
            .map(|(&n, s)| content(n, s))
            .collect();
        let lengths: Vec<u64> = datas.iter().map(|d| d.len() as u64).collect();
        let units = units(&lengths, piece);
        let hashes: Vec<Hash> = units
            .iter()
            .map(|u| {
                let data = &datas[u.file][u.offset as usize..][..u.len as usize];
                let height = merkle::piece_root_height(lengths[u.file], piece).unwrap();
                merkle::piece_root(data, height).unwrap()
            })
            .collect();
        let files = file_hashes(&lengths, &units, &hashes, piece);
        for (f, data) in files.iter().zip(&datas) {
            assert_eq!(f.root, merkle::file_root(data), "{} / {piece}", data.len());
            assert_eq!(f.layer, merkle::piece_layer(data, piece).unwrap());
            // A layer only for a file larger than one piece.
            assert_eq!(f.layer.is_empty(), data.len() as u64 <= u64::from(piece));
        }
    }
}

/// The committed fixtures, made by python3-libtorrent 2.0 (`make_fixtures.py`): the same files and
/// piece length give the same `info` bytes, so the same info-hashes, and the same `piece layers`.
#[test]
fn the_same_info_as_libtorrent_fixtures() {
    let all: Json =
        serde_json::from_str(include_str!("../../../tests/data/v2/expected.json")).unwrap();
    let fixtures: [(&str, &[u8]); 5] = [
        (
            "v2-single",
            include_bytes!("../../../tests/data/v2/v2-single.torrent"),
        ),
        (
            "v2-multi",
            include_bytes!("../../../tests/data/v2/v2-multi.torrent"),
        ),
        (
            "v2-16k",
            include_bytes!("../../../tests/data/v2/v2-16k.torrent"),
        ),
        (
            "hybrid-single",
            include_bytes!("../../../tests/data/v2/hybrid-single.torrent"),
        ),
        (
            "hybrid-multi",
            include_bytes!("../../../tests/data/v2/hybrid-multi.torrent"),
        ),
    ];
    for (name, bytes) in fixtures {
        let e = &all[name];
        let dir = tempfile::tempdir().unwrap();
        let mut first = String::new();
        for c in e["contents"].as_array().unwrap() {
            let path = c[0].as_str().unwrap();
            first = path.split('/').next().unwrap().to_string();
            tree(
                dir.path(),
                &[(path, c[1].as_u64().unwrap(), c[2].as_u64().unwrap())],
            );
        }
        let format = if name.starts_with("v2") {
            Format::V2
        } else {
            Format::Hybrid
        };
        let piece = e["piece_length"].as_u64().unwrap() as u32;
        let ours = make(&dir.path().join(&first), format, piece);
        let theirs = Metainfo::from_bytes_any_version(bytes).unwrap();
        assert_eq!(ours.info_bytes, theirs.info_bytes, "{name}");
        assert_eq!(ours.info_hash, theirs.info_hash, "{name}");
        assert_eq!(ours.info_hash_v2, theirs.info_hash_v2, "{name}");
        for i in 0..theirs.info.files.len() {
            assert_eq!(
                ours.info.piece_layer(i),
                theirs.info.piece_layer(i),
                "{name} {i}"
            );
        }
    }
}

#[test]
fn v2_info_layout_of_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("item");
    tree(
        &root,
        &[("big.bin", 70000, 1), ("d/small", 5, 2), ("empty", 0, 3)],
    );
    let opts = CreateOptions {
        piece_length: Some(PL),
        format: Format::V2,
        private: true,
        ..CreateOptions::default()
    };
    let made = create(&root, &opts, &|_| {}).unwrap();
    let top = info_of(&made.bytes);
    let info = get(&top, &["info"]).unwrap();
    let Value::Dict(keys) = info else {
        panic!("info is not a dictionary")
    };
    let keys: Vec<&[u8]> = keys.keys().map(Vec::as_slice).collect();
    let want: Vec<&[u8]> = vec![
        b"file tree",
        b"meta version",
        b"name",
        b"piece length",
        b"private",
    ];
    assert_eq!(keys, want);
    assert_eq!(get(info, &["name"]), Some(&Value::str("item")));
    assert_eq!(get(info, &["meta version"]), Some(&Value::Int(2)));
    let ft = ["file tree"];
    let leaf = |p: &[&str]| get(info, &[&ft[..], p, &[""][..]].concat()).cloned();
    assert_eq!(
        leaf(&["empty"]),
        Some(Value::dict([("length", Value::Int(0))])),
        "no pieces root for an empty file"
    );
    let small = leaf(&["d", "small"]).unwrap();
    assert_eq!(
        get(&small, &["pieces root"]),
        Some(&Value::Bytes(
            merkle::file_root(&content(5, 2)).unwrap().to_vec()
        ))
    );
    // `piece layers`: the one file larger than a piece, under its root.
    let big = content(70000, 1);
    let root_of_big = merkle::file_root(&big).unwrap();
    let layers = Value::Dict(
        [(
            root_of_big.to_vec(),
            Value::Bytes(merkle::piece_layer(&big, PL).unwrap().concat()),
        )]
        .into(),
    );
    assert_eq!(get(&top, &["piece layers"]), Some(&layers));
    let meta = Metainfo::from_bytes_any_version(&made.bytes).unwrap();
    assert_eq!(meta.info.version(), MetaVersion::V2);
    assert!(meta.info.private && meta.info.has_piece_layers());
    assert_eq!(made.info_hash, meta.info_hash);
}

#[test]
fn hybrid_info_layout_of_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("item");
    tree(
        &root,
        &[
            ("a", 0, 1),
            ("b.bin", 40000, 2),
            ("c/d", 5, 3),
            ("e", 32768, 4),
        ],
    );
    let made = create(
        &root,
        &CreateOptions {
            piece_length: Some(PL),
            format: Format::Hybrid,
            ..CreateOptions::default()
        },
        &|_| {},
    )
    .unwrap();
    let top = info_of(&made.bytes);
    let Some(Value::List(files)) = get(&top, &["info", "files"]) else {
        panic!("no files list")
    };
    let shape: Vec<(String, i64, bool)> = files
        .iter()
        .map(|f| {
            let Some(Value::List(path)) = get(f, &["path"]) else {
                panic!("no path")
            };
            let path: Vec<String> = path
                .iter()
                .map(|c| match c {
                    Value::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
                    _ => panic!("path component"),
                })
                .collect();
            let Some(Value::Int(len)) = get(f, &["length"]) else {
                panic!("no length")
            };
            let pad = get(f, &["attr"]) == Some(&Value::str("p"));
            (path.join("/"), *len, pad)
        })
        .collect();
    let s = |p: &str, n: i64, pad: bool| (p.to_string(), n, pad);
    assert_eq!(
        shape,
        vec![
            s("a", 0, false),
            s("b.bin", 40000, false),
            s(".pad/25536", 25536, true),
            s("c/d", 5, false),
            s(".pad/32763", 32763, true),
            s("e", 32768, false),
        ]
    );
    // No file is larger than a piece but b.bin: the only layer.
    let Some(Value::Dict(layers)) = get(&top, &["piece layers"]) else {
        panic!("no piece layers")
    };
    assert_eq!(layers.len(), 1);
    let meta = Metainfo::from_bytes_any_version(&made.bytes).unwrap();
    assert_eq!(meta.info.version(), MetaVersion::Hybrid);
    assert_eq!(meta.info.lengths.total(), 4 * u64::from(PL));
    assert_eq!(made.pieces, 4);
    // The v1 side works on its own: every piece hash matches the padded stream.
    let mut stream = content(40000, 2);
    stream.resize(2 * PL as usize, 0);
    stream.extend(content(5, 3));
    stream.resize(3 * PL as usize, 0);
    stream.extend(content(32768, 4));
    for (i, chunk) in stream.chunks(PL as usize).enumerate() {
        assert!(hash_matches(chunk, &meta.info.piece_hashes[i]), "piece {i}");
    }
}

#[test]
fn single_file_forms() {
    let dir = tempfile::tempdir().unwrap();
    tree(
        dir.path(),
        &[("one.bin", 100000, 1), ("only/f.bin", 40000, 2)],
    );
    // A file: the tree holds it under its name; a hybrid has v1 `length` and no pad.
    for format in [Format::V2, Format::Hybrid] {
        let made = create(
            &dir.path().join("one.bin"),
            &CreateOptions {
                piece_length: Some(PL),
                format,
                ..CreateOptions::default()
            },
            &|_| {},
        )
        .unwrap();
        let top = info_of(&made.bytes);
        let info = get(&top, &["info"]).unwrap();
        assert_eq!(get(info, &["name"]), Some(&Value::str("one.bin")));
        assert_eq!(
            get(info, &["file tree", "one.bin", "", "length"]),
            Some(&Value::Int(100000))
        );
        assert_eq!(get(info, &["files"]), None);
        let v1_length = (format == Format::Hybrid).then_some(&Value::Int(100000));
        assert_eq!(get(info, &["length"]), v1_length);
        let meta = Metainfo::from_bytes_any_version(&made.bytes).unwrap();
        assert!(!meta.info.multi_file);
    }
    // A directory of one file: named after the directory, the file at the top of the tree (so
    // readers, libtorrent too, take a v2-only one for that single file); a hybrid lists it in
    // `files`, without a pad.
    let v2 = make(&dir.path().join("only"), Format::V2, PL);
    let top = info_of(&v2.info_bytes);
    assert_eq!(get(&top, &["name"]), Some(&Value::str("only")));
    assert!(get(&top, &["file tree", "f.bin", ""]).is_some());
    let hybrid = make(&dir.path().join("only"), Format::Hybrid, PL);
    assert!(hybrid.info.multi_file);
    assert_eq!(hybrid.info.files.len(), 1);
    assert_eq!(hybrid.info.lengths.total(), 40000);
}

#[test]
fn identical_files_share_a_piece_layer_entry() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("twins");
    tree(&root, &[("a", 70000, 1), ("b", 70000, 1)]);
    let made = create(
        &root,
        &CreateOptions {
            piece_length: Some(PL),
            format: Format::V2,
            ..CreateOptions::default()
        },
        &|_| {},
    )
    .unwrap();
    let top = info_of(&made.bytes);
    let Some(Value::Dict(layers)) = get(&top, &["piece layers"]) else {
        panic!("no piece layers")
    };
    assert_eq!(layers.len(), 1);
    let meta = Metainfo::from_bytes_any_version(&made.bytes).unwrap();
    assert_eq!(meta.info.pieces_root(0), meta.info.pieces_root(2));
}

#[test]
fn too_many_pieces_are_refused_before_hashing() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("sparse");
    // 330,000 pieces of 16 KiB: 10.1 MiB of v2 hashes, past the 10 MiB a .torrent may have.
    std::fs::File::create(&f)
        .unwrap()
        .set_len(330_000 * 16384)
        .unwrap();
    for format in [Format::V2, Format::Hybrid] {
        let opts = CreateOptions {
            piece_length: Some(16384),
            format,
            ..CreateOptions::default()
        };
        let started = std::time::Instant::now();
        assert!(matches!(
            create(&f, &opts, &|_| {}),
            Err(CreateError::TooManyPieces {
                pieces: 330_000,
                ..
            })
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
