//! Unit tests of the bencode scan, decoder and encoder.

use super::*;

const L: Limits = Limits::TORRENT;

fn err(input: &[u8]) -> BencodeError {
    decode(input, L).expect_err("should be rejected")
}

#[test]
fn decodes_each_kind() {
    let d = decode(b"d3:agei-42e4:listl1:ai0ee4:name4:spame", L).unwrap();
    let root = d.root();
    assert_eq!(root.get(b"age").unwrap().as_int(), Some(-42));
    assert_eq!(root.get(b"name").unwrap().as_str(), Some("spam"));
    let list: Vec<_> = root.get(b"list").unwrap().as_list().unwrap().collect();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].as_bytes(), Some(&b"a"[..]));
    assert_eq!(list[1].as_int(), Some(0));
    assert!(root.get(b"missing").is_none());
    assert_eq!(root.kind_name(), "dictionary");
}

#[test]
fn raw_spans_are_the_original_bytes() {
    // Unsorted keys: the raw span must be what was given, not a re-encoding.
    let input = b"d4:infod1:zi1e1:ai2ee3:fooi1ee";
    let d = decode(input, L).unwrap();
    assert_eq!(d.root().get(b"info").unwrap().raw(), b"d1:zi1e1:ai2ee");
    assert_eq!(d.root().raw(), &input[..]);
}

#[test]
fn integer_rules() {
    assert_eq!(decode(b"i0e", L).unwrap().root().as_int(), Some(0));
    assert_eq!(
        decode(b"i9223372036854775807e", L).unwrap().root().as_int(),
        Some(i64::MAX)
    );
    assert_eq!(
        decode(b"i-9223372036854775808e", L)
            .unwrap()
            .root()
            .as_int(),
        Some(i64::MIN)
    );
    for bad in [
        &b"ie"[..],
        b"i-e",
        b"i-0e",
        b"i03e",
        b"i+3e",
        b"i3",
        b"i9223372036854775808e",
        b"i1.5e",
    ] {
        assert!(matches!(err(bad), BencodeError::Syntax { .. }), "{bad:?}");
    }
}

#[test]
fn byte_string_rules() {
    assert_eq!(decode(b"0:", L).unwrap().root().as_bytes(), Some(&b""[..]));
    assert!(matches!(
        err(b"5:abc"),
        BencodeError::Syntax { offset: 0, .. }
    ));
    assert!(matches!(err(b"03:abc"), BencodeError::Syntax { .. }));
    assert!(matches!(err(b"-1:a"), BencodeError::Syntax { .. }));
    assert!(matches!(
        err(b"99999999999999999999999:a"),
        BencodeError::Syntax { .. }
    ));
    // Invalid UTF-8 is a byte string, not text.
    let d = decode(b"2:\xff\xfe", L).unwrap();
    assert_eq!(d.root().as_str(), None);
    assert_eq!(d.root().as_bytes(), Some(&b"\xff\xfe"[..]));
}

#[test]
fn structure_errors_name_the_fault() {
    assert_eq!(err(b""), BencodeError::Empty);
    assert!(matches!(err(b"l"), BencodeError::Syntax { offset: 1, .. }));
    assert!(matches!(
        err(b"d1:ae"),
        BencodeError::Syntax { offset: 4, .. }
    ));
    assert!(matches!(
        err(b"di1ei2ee"),
        BencodeError::Syntax { offset: 1, .. }
    ));
    assert!(matches!(err(b"x"), BencodeError::Syntax { offset: 0, .. }));
    assert!(matches!(err(b"e"), BencodeError::Syntax { offset: 0, .. }));
    assert_eq!(
        err(b"i1ei2e"),
        BencodeError::Trailing {
            offset: 3,
            extra: 3
        }
    );
    assert_eq!(
        err(b"dei"),
        BencodeError::Trailing {
            offset: 2,
            extra: 1
        }
    );
    let dup = |input: &[u8]| {
        matches!(
            scan(input, L),
            Err(BencodeError::Syntax {
                what: "duplicate dictionary key",
                ..
            })
        )
    };
    assert!(dup(b"d1:ai1e1:ai2ee"));
    assert!(
        dup(b"d1:bi1e1:ai2e1:bi3ee"),
        "unsorted, duplicate not adjacent"
    );
    assert!(
        dup(b"d1:ad1:xi1e1:xi1ee1:bi1ee"),
        "inside a nested dictionary"
    );
    assert!(
        !dup(b"d1:bi1e1:ai2ee"),
        "unsorted without duplicates is accepted"
    );
    assert!(
        !dup(b"d1:ad1:ai1ee1:bd1:ai1eee"),
        "same key in sibling dictionaries"
    );
    assert!(
        !dup(b"ld1:ai1eed1:ai1eee"),
        "same key in dictionaries of a list"
    );
    assert!(err(b"<html>").to_string().contains("byte 0"));
}

#[test]
fn limits_are_enforced() {
    let tiny = Limits {
        max_len: 4,
        max_depth: 2,
        max_items: 3,
        max_tree_bytes: 1 << 20,
    };
    assert_eq!(
        decode(b"12345", tiny).unwrap_err(),
        BencodeError::TooLarge { len: 5, max: 4 }
    );
    assert!(decode(b"llee", tiny).is_ok());
    assert_eq!(
        decode(b"llle", tiny).unwrap_err(),
        BencodeError::TooDeep { offset: 2, max: 2 }
    );
    let few = Limits {
        max_len: 100,
        max_depth: 5,
        max_items: 3,
        max_tree_bytes: 1 << 20,
    };
    assert!(decode(b"li1ei2ee", few).is_ok());
    assert_eq!(
        decode(b"li1ei2ei3ee", few).unwrap_err(),
        BencodeError::TooManyItems { max: 3 }
    );
    // Deep nesting at the default limit is refused without recursion trouble.
    let deep = vec![b'l'; 100_000];
    assert!(matches!(
        decode(&deep, L).unwrap_err(),
        BencodeError::TooDeep { max: 50, .. }
    ));
}

#[test]
fn tree_memory_is_budgeted() {
    let max = 10 * 1024;
    let budget = Limits {
        max_tree_bytes: max,
        ..L
    };
    let list_of_dicts = |n: usize| {
        let mut d = b"l".to_vec();
        d.extend(std::iter::repeat_n(&b"d0:0:e"[..], n).flatten());
        d.push(b'e');
        d
    };
    let per_dict = VALUE_COST + DICT_COST + VALUE_COST; // the dict, its node, its one value
    let fits = (max - VALUE_COST - LIST_COST) / per_dict;
    assert!(decode(&list_of_dicts(fits), budget).is_ok());
    assert_eq!(
        decode(&list_of_dicts(fits + 1), budget).unwrap_err(),
        BencodeError::TooComplex { max }
    );
    assert!(BencodeError::TooComplex { max: 128 << 20 }
        .to_string()
        .contains("128 MiB"));
}

proptest::proptest! {
    /// `decode` relies on this: whatever the scan accepts, bip_bencode accepts too.
    #[test]
    fn scan_accepts_only_what_bip_accepts(bytes in proptest::collection::vec(
        proptest::sample::select(b"0123456789:ilde-ax".to_vec()), 0..48)) {
        let limits = Limits { max_depth: 3, ..L };
        if scan(&bytes, limits).is_ok() {
            let opts = BDecodeOpt::new(limits.max_depth + 1, false, true);
            proptest::prop_assert!(BencodeRef::decode(&bytes, opts).is_ok(), "{:?}", String::from_utf8_lossy(&bytes));
        }
    }
}

#[test]
fn encode_round_trips_and_sorts_keys() {
    let v = Value::dict([
        ("z", Value::Int(-1)),
        (
            "a",
            Value::List(vec![Value::str("x"), Value::Bytes(vec![0, 255])]),
        ),
    ]);
    let bytes = v.encode();
    assert_eq!(bytes, b"d1:al1:x2:\x00\xffe1:zi-1ee");
    assert_eq!(decode(&bytes, L).unwrap().root().to_value(), v);
}

#[test]
fn value_edits() {
    let mut v = Value::dict([("a", Value::Int(1))]);
    v.insert("b", Value::Int(2));
    *v.get_mut("a").unwrap() = Value::Int(3);
    assert_eq!(v.remove("b"), Some(Value::Int(2)));
    assert_eq!(v.encode(), b"d1:ai3ee");
    let mut not_dict = Value::Int(0);
    not_dict.insert("a", Value::Int(1));
    assert_eq!(not_dict.get_mut("a"), None);
}

#[test]
fn key_order_as_written() {
    let sorted = |input: &[u8]| decode(input, L).unwrap().root().keys_sorted();
    assert!(sorted(b"d1:ai1e1:bd1:xi1e1:yi2eee"));
    assert!(sorted(b"de"));
    assert!(sorted(b"li1e4:spame"));
    assert!(sorted(b"d0:i1e1:ai2e2:aai3ee"), "the empty key sorts first");
    assert!(!sorted(b"d1:bi1e1:ai2ee"));
    // Out of order one level down, inside a list, or in the second half of a dictionary.
    assert!(!sorted(b"d1:ad1:yi1e1:xi2eee"));
    assert!(!sorted(b"d1:ald1:bi1e1:ai2eeee"));
    assert!(!sorted(b"d1:ai1e1:ci1e1:bi1ee"));
    // Keys that are prefixes of each other, and values that contain `e` and `:`.
    assert!(sorted(b"d1:a3:e:e2:abl1:eee"));
    assert!(!sorted(b"d2:ab3:e:e1:al1:eee"));
    // Only the subtree asked about counts.
    let d = decode(b"d4:infod1:ai1e1:bi2ee1:zd1:bi1e1:ai2eee", L).unwrap();
    assert!(d.root().get(b"info").unwrap().keys_sorted());
    assert!(!d.root().keys_sorted());
}

#[test]
fn streaming_writer_matches_decimal_text_at_the_extremes() {
    for n in [0, 1, -1, 9, 10, -10, 1_234_567, i64::MAX, i64::MIN] {
        let mut out = Vec::new();
        put_int(&mut out, n);
        assert_eq!(out, format!("i{n}e").into_bytes(), "{n}");
        assert_eq!(decode(&out, L).unwrap().root().as_int(), Some(n));
    }
    for n in [0, 7, 10, 99, 100, u64::MAX] {
        let mut out = Vec::new();
        put_uint(&mut out, n);
        assert_eq!(out, format!("i{n}e").into_bytes(), "{n}");
    }
    for len in [0, 1, 9, 10, 100, 1000] {
        let b = vec![b'x'; len];
        let mut out = Vec::new();
        put_bytes(&mut out, &b);
        assert_eq!(out, [format!("{len}:").into_bytes(), b.clone()].concat());
        assert_eq!(decode(&out, L).unwrap().root().as_bytes(), Some(&b[..]));
    }
    // Appends, never replaces.
    let mut out = b"d".to_vec();
    put_bytes(&mut out, b"a");
    put_int(&mut out, -5);
    out.push(b'e');
    assert_eq!(out, b"d1:ai-5ee");
}
