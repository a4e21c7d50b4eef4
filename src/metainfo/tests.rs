//! Unit tests: one per metainfo rule, on torrents built in memory.

use super::*;
use crate::bencode::Value;

const PL: i64 = 32768;

fn file(len: i64, path: &[&str]) -> Value {
    Value::dict([
        ("length", Value::Int(len)),
        (
            "path",
            Value::List(path.iter().map(|p| Value::str(p)).collect()),
        ),
    ])
}

fn pieces_for(total: i64) -> Value {
    let n = (total + PL - 1) / PL;
    Value::Bytes(vec![7u8; n as usize * 20])
}

/// A multi-file torrent: `dir/a` 40,000 B, `dir/sub/b` 30,000 B, `dir/empty` 0 B; 3 pieces.
fn multi() -> Value {
    let info = Value::dict([
        ("name", Value::str("dir")),
        ("piece length", Value::Int(PL)),
        ("pieces", pieces_for(70_000)),
        (
            "files",
            Value::List(vec![
                file(40_000, &["a"]),
                file(30_000, &["sub", "b"]),
                file(0, &["empty"]),
            ]),
        ),
    ]);
    Value::dict([
        ("announce", Value::str("http://t.example/announce")),
        ("info", info),
    ])
}

fn single(len: i64) -> Value {
    let info = Value::dict([
        ("name", Value::str("file.bin")),
        ("piece length", Value::Int(PL)),
        ("pieces", pieces_for(len)),
        ("length", Value::Int(len)),
    ]);
    Value::dict([("info", info)])
}

fn info(t: &mut Value) -> &mut Value {
    t.get_mut("info").unwrap()
}

fn files(t: &mut Value) -> &mut Vec<Value> {
    match info(t).get_mut("files").unwrap() {
        Value::List(l) => l,
        _ => unreachable!(),
    }
}

fn parse(t: &Value) -> Result<Metainfo, MetainfoError> {
    Metainfo::from_bytes(&t.encode())
}

fn err(t: &Value) -> MetainfoError {
    parse(t).expect_err("should be refused")
}

#[test]
fn multi_file_layout() {
    let m = parse(&multi()).unwrap();
    let i = &m.info;
    assert_eq!(i.name, "dir");
    assert!(i.multi_file);
    assert_eq!(i.lengths.total(), 70_000);
    assert_eq!(i.lengths.piece_count(), 3);
    assert_eq!(i.lengths.last_piece_len(), 70_000 - 2 * 32768);
    assert_eq!(i.piece_hashes.len(), 3);
    let offsets: Vec<_> = i.files.iter().map(|f| (f.offset, f.length)).collect();
    assert_eq!(offsets, [(0, 40_000), (40_000, 30_000), (70_000, 0)]);
    assert_eq!(i.file_path(1).unwrap(), PathBuf::from("dir/sub/b"));
    assert_eq!(i.files[1].display_path(), "sub/b");
    assert_eq!(i.file_path(3), None);
    assert_eq!(m.info_bytes, {
        let v = multi();
        let Value::Dict(map) = &v else { unreachable!() };
        map[&b"info"[..]].encode()
    });
}

#[test]
fn single_file_layout() {
    let m = parse(&single(100)).unwrap();
    assert!(!m.info.multi_file);
    assert_eq!(m.info.files.len(), 1);
    assert_eq!(m.info.file_path(0).unwrap(), PathBuf::from("file.bin"));
    assert_eq!(m.info.lengths.piece_count(), 1);
    assert!(m.tiers().is_empty());
}

#[test]
fn info_hash_is_over_the_raw_bytes() {
    // Keys out of order and an unknown key: a re-encoding would sort them and change the hash.
    let info =
        b"d4:name1:a6:lengthi5e12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaa5:zzzzzi1ee";
    let mut doc = b"d4:info".to_vec();
    doc.extend_from_slice(info);
    doc.push(b'e');
    let m = Metainfo::from_bytes(&doc).unwrap();
    let expected: [u8; 20] = Sha1::digest(info).into();
    assert_eq!(m.info_hash.0, expected);
    let reencoded = crate::bencode::decode(info, Limits::TORRENT)
        .unwrap()
        .root()
        .to_value()
        .encode();
    assert_ne!(reencoded, info.to_vec());
    assert_ne!(m.info_hash.0, <[u8; 20]>::from(Sha1::digest(&reencoded)));
}

#[test]
fn utf8_variants_are_preferred() {
    let mut t = multi();
    info(&mut t).insert("name", Value::Bytes(b"caf\xe9".to_vec()));
    info(&mut t).insert("name.utf-8", Value::str("café"));
    files(&mut t)[0].insert("path.utf-8", Value::List(vec![Value::str("ä")]));
    t.insert("comment.utf-8", Value::str("naïve"));
    t.insert("comment", Value::Bytes(b"na\xefve".to_vec()));
    let m = parse(&t).unwrap();
    assert_eq!(m.info.name, "café");
    assert_eq!(m.info.files[0].path, ["ä"]);
    assert_eq!(m.comment.as_deref(), Some("naïve"));
    // Without the utf-8 variant, invalid UTF-8 is replaced, not refused.
    info(&mut t).remove("name.utf-8");
    assert_eq!(parse(&t).unwrap().info.name, "caf\u{fffd}");
}

#[test]
fn pad_files_and_attributes() {
    let mut t = multi();
    let mut pad = file(0, &[".pad", "16384"]);
    pad.insert("attr", Value::str("p"));
    let mut exe = file(0, &["run.sh"]);
    exe.insert("attr", Value::str("xh"));
    files(&mut t).extend([pad.clone(), pad, exe]);
    let m = parse(&t).unwrap();
    let f = &m.info.files;
    assert!(
        f[3].attr.pad && f[4].attr.pad,
        "same-path pad files are allowed"
    );
    assert!(!f[0].attr.pad);
    assert!(f[5].attr.executable && f[5].attr.hidden && !f[5].attr.symlink);
}

#[test]
fn unknown_keys_are_ignored() {
    let mut t = multi();
    info(&mut t).insert("collections", Value::List(vec![Value::str("x")]));
    info(&mut t).insert("file tree", Value::dict([]));
    info(&mut t).insert("meta version", Value::Int(2));
    for f in files(&mut t).iter_mut() {
        f.insert("crc32", Value::str("00ff"));
        f.insert("mtime", Value::str("1234"));
    }
    t.insert("piece layers", Value::dict([]));
    let m = parse(&t).unwrap();
    assert!(m.info.hybrid);
    assert_eq!(m.info.files.len(), 3);
}

#[test]
fn optional_metadata() {
    let mut t = multi();
    t.insert(
        "announce-list",
        Value::List(vec![
            Value::List(vec![
                Value::str("udp://a:1"),
                Value::str(" http://b/announce "),
            ]),
            Value::List(vec![Value::str("udp://a:1"), Value::Int(3)]), // duplicate + junk: tier dropped
            Value::str("not a tier"),
            Value::List(vec![Value::str("http://c/announce")]),
        ]),
    );
    t.insert("url-list", Value::str("https://mirror/"));
    t.insert("comment", Value::str("hello"));
    t.insert("created by", Value::str("mktorrent 1.1"));
    t.insert("creation date", Value::Int(1_727_283_247));
    info(&mut t).insert("private", Value::Int(1));
    let m = parse(&t).unwrap();
    assert_eq!(
        m.announce_list,
        [
            vec!["udp://a:1".to_string(), "http://b/announce".into()],
            vec!["http://c/announce".into()]
        ]
    );
    assert_eq!(m.tiers(), m.announce_list);
    assert_eq!(m.announce.as_deref(), Some("http://t.example/announce"));
    assert_eq!(m.url_list, ["https://mirror/"]);
    assert_eq!(m.comment.as_deref(), Some("hello"));
    assert_eq!(m.created_by.as_deref(), Some("mktorrent 1.1"));
    assert_eq!(m.creation_date, Some(1_727_283_247));
    assert!(m.info.private);

    t.insert(
        "url-list",
        Value::List(vec![
            Value::str("http://a/"),
            Value::str(""),
            Value::str("http://a/"),
        ]),
    );
    t.insert("announce-list", Value::List(vec![]));
    info(&mut t).insert("private", Value::Int(0));
    let m = parse(&t).unwrap();
    assert_eq!(m.url_list, ["http://a/"]);
    assert_eq!(m.tiers(), [vec!["http://t.example/announce".to_string()]]);
    assert!(!m.info.private);
}

#[test]
fn tracker_count_is_bounded() {
    let mut t = multi();
    let tiers = (0..MAX_TRACKERS + 10)
        .map(|i| Value::List(vec![Value::str(&format!("http://t{i}/announce"))]))
        .collect();
    t.insert("announce-list", Value::List(tiers));
    assert_eq!(parse(&t).unwrap().announce_list.len(), MAX_TRACKERS);
}

#[test]
fn not_a_torrent() {
    assert!(matches!(
        Metainfo::from_bytes(b"<html>nope</html>"),
        Err(MetainfoError::Bencode(_))
    ));
    let mut trailing = multi().encode();
    trailing.extend_from_slice(b"junk");
    assert!(matches!(
        Metainfo::from_bytes(&trailing),
        Err(MetainfoError::Bencode(BencodeError::Trailing {
            extra: 4,
            ..
        }))
    ));
    assert_eq!(err(&Value::List(vec![])), MetainfoError::NotADict("list"));
    assert_eq!(err(&Value::dict([])), MetainfoError::Missing("info".into()));
    assert!(matches!(
        err(&Value::dict([("info", Value::Int(1))])),
        MetainfoError::WrongType { .. }
    ));
}

#[test]
fn limits_on_size_and_depth() {
    let big = vec![b'0'; Limits::TORRENT.max_len + 1];
    assert!(matches!(
        Metainfo::from_bytes(&big),
        Err(MetainfoError::Bencode(BencodeError::TooLarge { .. }))
    ));
    let mut t = multi();
    let mut deep = Value::Int(0);
    for _ in 0..60 {
        deep = Value::List(vec![deep]);
    }
    t.insert("junk", deep);
    assert!(matches!(
        err(&t),
        MetainfoError::Bencode(BencodeError::TooDeep { .. })
    ));
}

#[test]
fn required_keys_and_types() {
    for key in ["name", "piece length", "pieces"] {
        let mut t = multi();
        info(&mut t).remove(key);
        assert_eq!(
            err(&t),
            MetainfoError::Missing(format!("info.{key}")),
            "{key}"
        );
    }
    let mut t = multi();
    info(&mut t).remove("files");
    assert!(matches!(err(&t), MetainfoError::Missing(_)));

    let mut t = multi();
    info(&mut t).insert("piece length", Value::str("32768"));
    assert!(matches!(
        err(&t),
        MetainfoError::WrongType {
            expected: "an integer",
            ..
        }
    ));
    let mut t = multi();
    info(&mut t).insert("pieces", Value::Int(1));
    assert!(matches!(
        err(&t),
        MetainfoError::WrongType {
            expected: "a byte string",
            ..
        }
    ));
    let mut t = multi();
    info(&mut t).insert("files", Value::str("x"));
    assert!(matches!(
        err(&t),
        MetainfoError::WrongType {
            expected: "a list",
            ..
        }
    ));
    let mut t = multi();
    files(&mut t)[1] = Value::Int(3);
    assert!(err(&t).to_string().contains("info.files[1]"));
    let mut t = multi();
    files(&mut t)[1].remove("path");
    assert_eq!(err(&t), MetainfoError::Missing("info.files[1].path".into()));
    let mut t = multi();
    files(&mut t)[1].remove("length");
    assert_eq!(
        err(&t),
        MetainfoError::Missing("info.files[1].length".into())
    );
    let mut t = multi();
    info(&mut t).insert("name", Value::Int(5));
    assert!(matches!(err(&t), MetainfoError::WrongType { .. }));
}

#[test]
fn piece_rules() {
    for bad in [0, -1, i64::from(MAX_PIECE_LENGTH) + 1, i64::MAX] {
        let mut t = multi();
        info(&mut t).insert("piece length", Value::Int(bad));
        assert!(
            matches!(err(&t), MetainfoError::BadNumber { value, .. } if value == bad),
            "{bad}"
        );
    }
    let mut t = multi();
    info(&mut t).insert("pieces", Value::Bytes(vec![0; 59]));
    assert_eq!(err(&t), MetainfoError::PiecesLength(59));
    for n in [2usize, 4, 0] {
        let mut t = multi();
        info(&mut t).insert("pieces", Value::Bytes(vec![0; n * 20]));
        assert!(
            matches!(err(&t), MetainfoError::PieceCount { expected: 3, actual, .. } if actual == n),
            "{n}"
        );
    }
    let mut t = multi();
    info(&mut t).remove("pieces");
    info(&mut t).insert("file tree", Value::dict([]));
    assert_eq!(err(&t), MetainfoError::V2Only);
}

#[test]
fn size_rules() {
    let mut t = multi();
    info(&mut t).insert("length", Value::Int(5));
    assert_eq!(err(&t), MetainfoError::LengthAndFiles);
    let mut t = multi();
    files(&mut t)[0].insert("length", Value::Int(-5));
    assert!(matches!(
        err(&t),
        MetainfoError::BadNumber { value: -5, .. }
    ));
    assert!(matches!(err(&single(-1)), MetainfoError::BadNumber { .. }));
    let mut t = multi();
    *files(&mut t) = vec![
        file(i64::MAX, &["a"]),
        file(i64::MAX, &["b"]),
        file(i64::MAX, &["c"]),
    ];
    assert_eq!(err(&t), MetainfoError::Overflow);
    let mut t = multi();
    *files(&mut t) = vec![file(0, &["a"])];
    info(&mut t).insert("pieces", Value::Bytes(vec![]));
    assert_eq!(err(&t), MetainfoError::Empty);
    let mut t = multi();
    *files(&mut t) = vec![];
    assert_eq!(err(&t), MetainfoError::Empty);
    // Huge but consistent: 2^40 bytes in 256 MiB pieces parses without allocating the data.
    let mut t = single(0);
    info(&mut t).insert("length", Value::Int(1 << 40));
    info(&mut t).insert("piece length", Value::Int(i64::from(MAX_PIECE_LENGTH)));
    info(&mut t).insert("pieces", Value::Bytes(vec![0; 4096 * 20]));
    assert_eq!(parse(&t).unwrap().info.lengths.piece_count(), 4096);
}

#[test]
fn path_rules() {
    let bad: [(&[u8], &str); 10] = [
        (b"", "is empty"),
        (b".", "`.`"),
        (b"..", "`..`"),
        (b"/etc", "separator"),
        (b"a\\b", "separator"),
        (b"a\0b", "NUL"),
        (&[b'x'; 256], "255"),
        (b"evil\x1b]0;pwned\x07", "control character"),
        (b"two\nlines", "control character"),
        ("gpj.\u{202e}exe".as_bytes(), "control character"),
    ];
    for (component, why) in bad {
        let mut t = multi();
        files(&mut t)[1] = Value::dict([
            ("length", Value::Int(30_000)),
            (
                "path",
                Value::List(vec![Value::str("sub"), Value::Bytes(component.to_vec())]),
            ),
        ]);
        let e = err(&t);
        assert!(
            matches!(e, MetainfoError::BadPath { ref key, .. } if key == "info.files[1].path[1]"),
            "{e}"
        );
        assert!(e.to_string().contains(why), "{e} should say {why}");

        let mut t = single(10);
        info(&mut t).insert("name", Value::Bytes(component.to_vec()));
        assert!(matches!(err(&t), MetainfoError::BadPath { ref key, .. } if key == "info.name"));
    }
    let mut t = multi();
    files(&mut t)[1].insert("path", Value::List(vec![]));
    assert!(err(&t).to_string().contains("empty list"));
    let mut t = multi();
    files(&mut t)[1].insert("path", Value::List(vec![Value::Int(1)]));
    assert!(matches!(err(&t), MetainfoError::WrongType { .. }));
    // 255 bytes is fine.
    let mut t = single(10);
    info(&mut t).insert("name", Value::Bytes(vec![b'x'; 255]));
    assert!(parse(&t).is_ok());
}

#[test]
fn path_length_is_bounded() {
    // 2,000 two-byte components (3,999 bytes with separators) are fine; 2,049 are past PATH_MAX.
    let deep = |n: usize| {
        let mut t = multi();
        files(&mut t)[2] = file(0, &vec!["d"; n]);
        t
    };
    assert!(parse(&deep(2000)).is_ok());
    let e = err(&deep(2049));
    assert!(e.to_string().contains("longer than 4096 bytes"), "{e}");
    // A very deep path is refused at once, not after quadratic work (it used to take seconds).
    let start = std::time::Instant::now();
    assert!(matches!(err(&deep(40_000)), MetainfoError::BadPath { .. }));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn piece_count_that_cannot_be_counted() {
    let mut t = single(0);
    info(&mut t).insert("length", Value::Int(1 << 40));
    info(&mut t).insert("piece length", Value::Int(1));
    let e = err(&t);
    assert!(
        matches!(e, MetainfoError::PieceCount { expected, actual: 0, .. } if expected == 1 << 40),
        "{e}"
    );
    assert!(!e.to_string().contains("total size 0"));
}

#[test]
fn duplicate_paths() {
    let mut t = multi();
    files(&mut t)[2] = file(0, &["sub", "b"]);
    assert_eq!(err(&t), MetainfoError::DuplicatePath("sub/b".into()));
    // A file where another file needs a directory, in either order.
    let mut t = multi();
    files(&mut t)[2] = file(0, &["a", "inner"]);
    assert_eq!(err(&t), MetainfoError::DuplicatePath("a".into()));
    let mut t = multi();
    files(&mut t)[2] = file(0, &["sub"]);
    assert_eq!(err(&t), MetainfoError::DuplicatePath("sub".into()));
    // Same name in different directories is fine.
    let mut t = multi();
    files(&mut t)[2] = file(0, &["b"]);
    assert!(parse(&t).is_ok());
}
