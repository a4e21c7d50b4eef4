//! Unit tests of the `file tree` rules, on v2-only torrents built in memory.

use std::collections::BTreeMap;

use crate::bencode::Value;
use crate::metainfo::{Metainfo, MetainfoError};

fn leaf(len: i64, root: Option<[u8; 32]>) -> Value {
    let mut props = Value::dict([("length", Value::Int(len))]);
    if let Some(r) = root {
        props.insert("pieces root", Value::Bytes(r.to_vec()));
    }
    Value::dict([("", props)])
}

fn file(len: i64) -> Value {
    leaf(len, Some([7; 32]))
}

fn torrent(tree: Value) -> Value {
    let info = Value::dict([
        ("name", Value::str("t")),
        ("piece length", Value::Int(16384)),
        ("meta version", Value::Int(2)),
        ("file tree", tree),
    ]);
    Value::dict([("info", info)])
}

fn parse(t: &Value) -> Result<Metainfo, MetainfoError> {
    Metainfo::from_bytes_any_version(&t.encode())
}

fn tree_error(tree: Value) -> MetainfoError {
    parse(&torrent(tree)).expect_err("should be refused")
}

fn is_bad_tree(e: &MetainfoError, why_part: &str) -> bool {
    matches!(e, MetainfoError::BadFileTree { why, .. } if why.contains(why_part))
}

#[test]
fn files_come_in_tree_order_below_the_name() {
    let tree = Value::dict([
        ("b", Value::dict([("x", file(3)), ("a", file(5))])),
        ("a.txt", file(1)),
        ("empty", leaf(0, None)),
    ]);
    let m = parse(&torrent(tree)).unwrap();
    let paths: Vec<String> = m.info.files.iter().map(|f| f.display_path()).collect();
    assert_eq!(
        paths,
        [
            "a.txt",
            ".pad/16383",
            "b/a",
            ".pad/16379",
            "b/x",
            ".pad/16381",
            "empty"
        ]
    );
    assert!(m.info.multi_file);
    assert_eq!(m.info.file_path(2).unwrap().to_str(), Some("t/b/a"));
    assert_eq!(m.info.lengths.piece_count(), 3);
    assert_eq!(m.info.pieces_root(6), None);
    // One directory at the top is multi-file too.
    let m = parse(&torrent(Value::dict([(
        "d",
        Value::dict([("f", file(4))]),
    )])))
    .unwrap();
    assert!(m.info.multi_file);
    assert_eq!(m.info.files.len(), 1);
}

#[test]
fn a_root_on_an_empty_file_is_ignored_and_a_link_has_no_payload() {
    let mut link = leaf(99, None);
    if let Some(Value::Dict(props)) = link.get_mut("") {
        props.insert(b"attr".to_vec(), Value::str("l"));
    }
    let tree = Value::dict([("a", file(10)), ("e", leaf(0, Some([1; 32]))), ("l", link)]);
    let m = parse(&torrent(tree)).unwrap();
    let e = m.info.files.iter().position(|f| f.path == ["e"]).unwrap();
    assert_eq!(m.info.pieces_root(e), None);
    let l = m.info.files.iter().position(|f| f.path == ["l"]).unwrap();
    assert_eq!(m.info.files[l].length, 0);
    assert!(m.info.files[l].attr.symlink);
}

#[test]
fn tree_shape_rules() {
    assert!(is_bad_tree(
        &tree_error(Value::dict([(
            "",
            Value::dict([("length", Value::Int(1))])
        )])),
        "itself a file"
    ));
    let mut both = file(3);
    both.insert("sibling", file(4));
    assert!(is_bad_tree(
        &tree_error(Value::dict([("a", both)])),
        "beside other keys"
    ));
    assert!(is_bad_tree(&tree_error(Value::dict([])), "holds no file"));
    assert!(is_bad_tree(
        &tree_error(Value::dict([("d", Value::dict([]))])),
        "holds no file"
    ));
    assert!(matches!(
        tree_error(Value::dict([("a", Value::Int(3))])),
        MetainfoError::WrongType { .. }
    ));
    assert!(matches!(
        tree_error(Value::dict([("a", Value::dict([("", Value::Int(3))]))])),
        MetainfoError::WrongType { .. }
    ));
    assert_eq!(
        tree_error(Value::dict([("a", leaf(0, None))])),
        MetainfoError::Empty
    );
}

#[test]
fn file_property_rules() {
    assert!(matches!(
        tree_error(Value::dict([("a", leaf(5, None))])),
        MetainfoError::Missing(k) if k.ends_with("a.pieces root")
    ));
    let mut short = file(5);
    if let Some(Value::Dict(props)) = short.get_mut("") {
        props.insert(b"pieces root".to_vec(), Value::Bytes(vec![1; 31]));
    }
    assert!(is_bad_tree(
        &tree_error(Value::dict([("a", short)])),
        "32-byte"
    ));
    assert!(is_bad_tree(
        &tree_error(Value::dict([("a", leaf(5, Some([0; 32])))])),
        "all zeros"
    ));
    assert!(matches!(
        tree_error(Value::dict([("a", leaf(-1, Some([1; 32])))])),
        MetainfoError::BadNumber { value: -1, .. }
    ));
    let mut pad = file(5);
    if let Some(Value::Dict(props)) = pad.get_mut("") {
        props.insert(b"attr".to_vec(), Value::str("p"));
    }
    assert!(is_bad_tree(
        &tree_error(Value::dict([("a", pad)])),
        "pad file"
    ));
}

#[test]
fn path_rules_are_the_v1_rules() {
    for bad in ["..", ".", "a/b", "a\\b", "nul\0", "esc\x1b[2J"] {
        let mut tree = BTreeMap::new();
        tree.insert(bad.as_bytes().to_vec(), file(1));
        assert!(
            matches!(tree_error(Value::Dict(tree)), MetainfoError::BadPath { .. }),
            "{bad:?}"
        );
    }
    let mut tree = BTreeMap::new();
    tree.insert("x".repeat(256).into_bytes(), file(1));
    assert!(matches!(
        tree_error(Value::Dict(tree)),
        MetainfoError::BadPath { .. }
    ));
    // Two keys that read the same once invalid UTF-8 is replaced.
    let mut tree = BTreeMap::new();
    tree.insert(b"\xfe".to_vec(), file(1));
    tree.insert(b"\xff".to_vec(), file(1));
    assert!(matches!(
        tree_error(Value::Dict(tree)),
        MetainfoError::DuplicatePath(_)
    ));
    // 17 levels of 255-byte directories pass 4096 bytes.
    let mut deep = file(1);
    for i in 0..17u8 {
        let mut d = BTreeMap::new();
        d.insert(vec![b'a' + i; 255], deep);
        deep = Value::Dict(d);
    }
    assert!(matches!(tree_error(deep), MetainfoError::BadPath { why, .. } if why.contains("4096")));
}

#[test]
fn version_and_piece_length_rules() {
    let one = || Value::dict([("a", file(1))]);
    for bad in [8192, 20000, 16384 * 3] {
        let mut t = torrent(one());
        t.get_mut("info")
            .unwrap()
            .insert("piece length", Value::Int(bad));
        assert!(matches!(parse(&t), Err(MetainfoError::BadNumber { value, .. }) if value == bad));
    }
    let mut t = torrent(one());
    t.get_mut("info")
        .unwrap()
        .insert("meta version", Value::Int(3));
    assert_eq!(parse(&t).unwrap_err(), MetainfoError::UnsupportedVersion(3));
    t.get_mut("info").unwrap().remove("meta version");
    assert_eq!(
        parse(&t).unwrap_err(),
        MetainfoError::Missing("info.meta version".into())
    );
    t.get_mut("info").unwrap().remove("file tree");
    assert_eq!(
        parse(&t).unwrap_err(),
        MetainfoError::Missing("info.pieces".into())
    );
    let mut t = torrent(one());
    t.get_mut("info").unwrap().remove("file tree");
    assert_eq!(
        parse(&t).unwrap_err(),
        MetainfoError::Missing("info.file tree".into())
    );
}

#[test]
fn a_v2_info_with_unsorted_keys_is_refused() {
    let root = "r".repeat(32);
    let sorted = format!(
        "d4:infod9:file treed1:ad0:d6:lengthi1e11:pieces root32:{root}eee12:meta versioni2e4:name1:t12:piece lengthi16384eee"
    );
    assert!(Metainfo::from_bytes_any_version(sorted.as_bytes()).is_ok());
    let unsorted = sorted.replace(
        "4:name1:t12:piece lengthi16384e",
        "12:piece lengthi16384e4:name1:t",
    );
    assert_eq!(
        Metainfo::from_bytes_any_version(unsorted.as_bytes()).unwrap_err(),
        MetainfoError::UnsortedKeys
    );
}
