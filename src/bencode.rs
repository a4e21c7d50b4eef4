//! Bencode: the one place that touches `bip_bencode`.
//! Decoding with limits (size, depth, item count) and precise errors, raw byte spans, and an encoder.
//!
//! Decoding is two passes over borrowed bytes: [`scan`] is a linear, allocation-free validator that
//! enforces [`Limits`] and names the exact offset of any fault; only input that passes it reaches
//! `bip_bencode`, which builds the borrowed tree. The scan exists because `bip_bencode` has no size or
//! item limit, reports trailing bytes as "incomplete number of bytes", and its error-chain errors are
//! neither `Sync` nor cheap (they capture a backtrace when `RUST_BACKTRACE` is set).

use std::collections::BTreeMap;

use bip_bencode::ext::BRefAccessExt;
use bip_bencode::{BDecodeOpt, BRefAccess, BencodeRef, BencodeRefKind};

/// Bounds applied to every bencoded document read from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input accepted, in bytes.
    pub max_len: usize,
    /// Deepest nesting of lists and dictionaries accepted.
    pub max_depth: usize,
    /// Most values (integers, strings, lists, dictionaries, dictionary keys) in one document.
    pub max_items: usize,
    /// Most memory the decoded tree may need, as estimated by the scan (an upper bound of
    /// `bip_bencode`'s allocations: [`VALUE_COST`], [`DICT_COST`], [`LIST_COST`]).
    pub max_tree_bytes: usize,
}

/// Tree memory charged per value: a 48-byte node in its parent's `Vec` or map, doubled for growth
/// (measured: 94 bytes).
pub const VALUE_COST: usize = 128;
/// Extra charged per dictionary: a `BTreeMap` leaf of 11 entries (measured: 688 bytes).
pub const DICT_COST: usize = 768;
/// Extra charged per list: its first `Vec` allocation (measured: 160 bytes).
pub const LIST_COST: usize = 192;

impl Limits {
    /// Limits for `.torrent` files: 10 MiB, like libtorrent's default `max_buffer_size`; depth 50, far past
    /// any real torrent (a v2 `file tree` is as deep as the deepest path); 2 million items, libtorrent's
    /// token default; a 128 MiB tree, room for about 60,000 files described the Internet Archive's way
    /// (six keys each) while a hostile 10 MiB file cannot cost more.
    pub const TORRENT: Limits = Limits {
        max_len: 10 * 1024 * 1024,
        max_depth: 50,
        max_items: 2_000_000,
        max_tree_bytes: 128 * 1024 * 1024,
    };
    /// Limits for tracker replies: 2 MiB is thousands of peers in any form; replies are shallow; a 4 MiB
    /// tree holds about 3,000 peers in dictionary form (we keep 1,000).
    pub const TRACKER_REPLY: Limits = Limits {
        max_len: 2 * 1024 * 1024,
        max_depth: 16,
        max_items: 200_000,
        max_tree_bytes: 4 * 1024 * 1024,
    };
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    /// Nothing to decode.
    #[error("empty input: expected bencoded data")]
    Empty,
    /// Larger than [`Limits::max_len`].
    #[error("input is {len} bytes, more than the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// Nested deeper than [`Limits::max_depth`].
    #[error("nesting deeper than {max} levels at byte {offset}")]
    TooDeep { offset: usize, max: usize },
    /// More values than [`Limits::max_items`].
    #[error("more than {max} bencoded values")]
    TooManyItems { max: usize },
    /// The decoded tree would need more than [`Limits::max_tree_bytes`].
    #[error("too complex: decoding it would need more than {} MiB of memory", max / (1024 * 1024))]
    TooComplex { max: usize },
    /// Not bencode at this offset.
    #[error("not valid bencode at byte {offset}: {what}")]
    Syntax { offset: usize, what: &'static str },
    /// A complete value followed by more bytes.
    #[error("{extra} unexpected bytes after the bencoded value at byte {offset}")]
    Trailing { offset: usize, extra: usize },
}

/// What the scanner is inside of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    List,
    DictKey,
    DictValue,
}

/// Validates `bytes` as exactly one bencoded value within `limits`. Stricter than `bip_bencode`: no `+`
/// sign, no empty integer, no leading zeros; duplicate keys are found here too, so that `bip_bencode`
/// never fails (its errors capture a symbolized backtrace, tens of MB, when `RUST_BACKTRACE` is set).
/// Memory: the depth stack, plus the keys of the dictionaries currently open.
pub fn scan(bytes: &[u8], limits: Limits) -> Result<(), BencodeError> {
    if bytes.is_empty() {
        return Err(BencodeError::Empty);
    }
    if bytes.len() > limits.max_len {
        return Err(BencodeError::TooLarge {
            len: bytes.len(),
            max: limits.max_len,
        });
    }
    let syntax = |offset, what| BencodeError::Syntax { offset, what };
    let mut stack: Vec<Frame> = Vec::new();
    let mut keys = DictKeys::default();
    let mut pos = 0usize;
    let mut items = 0usize;
    let mut tree_bytes = 0usize;
    loop {
        let Some(&byte) = bytes.get(pos) else {
            return Err(syntax(pos, "input ends inside a list or dictionary"));
        };
        if byte == b'e' && !stack.is_empty() {
            match stack.pop() {
                Some(Frame::DictValue) => {
                    return Err(syntax(pos, "dictionary key without a value"))
                }
                Some(Frame::DictKey) if keys.close() => {
                    return Err(syntax(pos, "duplicate dictionary key"));
                }
                _ => pos += 1,
            }
        } else {
            items += 1;
            if items > limits.max_items {
                return Err(BencodeError::TooManyItems {
                    max: limits.max_items,
                });
            }
            let top = stack.last().copied();
            // Keys live inside their dictionary's node; every other value takes a node of its own.
            tree_bytes += match byte {
                _ if top == Some(Frame::DictKey) => 0,
                b'd' => VALUE_COST + DICT_COST,
                b'l' => VALUE_COST + LIST_COST,
                _ => VALUE_COST,
            };
            if tree_bytes > limits.max_tree_bytes {
                return Err(BencodeError::TooComplex {
                    max: limits.max_tree_bytes,
                });
            }
            if top == Some(Frame::DictKey) && !byte.is_ascii_digit() {
                return Err(syntax(pos, "dictionary key is not a byte string"));
            }
            match byte {
                b'i' => pos = scan_int(bytes, pos + 1, b'e', true)?,
                b'0'..=b'9' => {
                    let start = scan_int(bytes, pos, b':', false)?;
                    let len = parse_digits(&bytes[pos..start - 1])
                        .ok_or(syntax(pos, "byte string length too large"))?;
                    if len > bytes.len() - start {
                        return Err(syntax(pos, "byte string runs past the end of the input"));
                    }
                    if top == Some(Frame::DictKey) {
                        keys.push(&bytes[start..start + len]);
                    }
                    pos = start + len;
                }
                b'l' | b'd' => {
                    if stack.len() >= limits.max_depth {
                        return Err(BencodeError::TooDeep {
                            offset: pos,
                            max: limits.max_depth,
                        });
                    }
                    pos += 1;
                }
                _ => return Err(syntax(pos, "expected 'i', 'l', 'd' or a digit")),
            }
            // The value just read fills the slot the top frame was waiting for.
            if let Some(frame) = stack.last_mut() {
                *frame = match *frame {
                    Frame::DictKey => Frame::DictValue,
                    Frame::DictValue => Frame::DictKey,
                    Frame::List => Frame::List,
                };
            }
            match byte {
                b'l' => stack.push(Frame::List),
                b'd' => {
                    stack.push(Frame::DictKey);
                    keys.open();
                }
                _ => {}
            }
        }
        if stack.is_empty() {
            break;
        }
    }
    if pos != bytes.len() {
        return Err(BencodeError::Trailing {
            offset: pos,
            extra: bytes.len() - pos,
        });
    }
    Ok(())
}

/// The keys of the dictionaries open during a scan, to find duplicates. Sorted dictionaries (the norm:
/// BEP 3 requires it) are checked by comparing each key with the previous one; only a dictionary with
/// keys out of order is sorted when it closes.
#[derive(Default)]
struct DictKeys<'a> {
    /// Keys of every open dictionary, innermost last.
    keys: Vec<&'a [u8]>,
    /// Per open dictionary: where its keys start in `keys`, and whether they arrived out of order.
    frames: Vec<(usize, bool)>,
}

impl<'a> DictKeys<'a> {
    fn open(&mut self) {
        self.frames.push((self.keys.len(), false));
    }

    fn push(&mut self, key: &'a [u8]) {
        if let Some((start, unsorted)) = self.frames.last_mut() {
            if self.keys.len() > *start && self.keys.last().is_some_and(|prev| key <= *prev) {
                *unsorted = true;
            }
            self.keys.push(key);
        }
    }

    /// Closes the innermost dictionary; `true` if it had a duplicate key.
    fn close(&mut self) -> bool {
        let Some((start, unsorted)) = self.frames.pop() else {
            return false;
        };
        let mine = &mut self.keys[start..];
        let duplicate = unsorted && {
            mine.sort_unstable();
            mine.windows(2).any(|w| w[0] == w[1])
        };
        self.keys.truncate(start);
        duplicate
    }
}

/// Reads `[-]digits` up to `delim` starting at `pos`; returns the offset after `delim`.
fn scan_int(bytes: &[u8], pos: usize, delim: u8, signed: bool) -> Result<usize, BencodeError> {
    let syntax = |offset, what| BencodeError::Syntax { offset, what };
    let mut digits_at = pos;
    if signed && bytes.get(pos) == Some(&b'-') {
        digits_at += 1;
    }
    let mut end = digits_at;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
        // 20 digits already exceed i64; stop early rather than walk a long run of digits.
        if end - digits_at > 20 {
            return Err(syntax(pos, "number too large"));
        }
    }
    if end == digits_at {
        return Err(syntax(pos, "expected digits"));
    }
    if bytes.get(end) != Some(&delim) {
        return Err(syntax(end, "number not terminated"));
    }
    let digits = &bytes[digits_at..end];
    if digits.len() > 1 && digits[0] == b'0' {
        return Err(syntax(pos, "number with leading zeros"));
    }
    if digits_at != pos && digits == b"0" {
        return Err(syntax(pos, "negative zero"));
    }
    if signed {
        // i64 range, negative side included.
        let text =
            std::str::from_utf8(&bytes[pos..end]).map_err(|_| syntax(pos, "expected digits"))?;
        text.parse::<i64>()
            .map_err(|_| syntax(pos, "integer out of range"))?;
    }
    Ok(end + 1)
}

fn parse_digits(digits: &[u8]) -> Option<usize> {
    digits.iter().try_fold(0usize, |acc, d| {
        acc.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

/// A decoded document borrowing its input; [`Decoded::root`] is the top-level value.
#[derive(Debug)]
pub struct Decoded<'a> {
    root: BencodeRef<'a>,
}

/// Decodes exactly one bencoded value from `bytes` within `limits`. Dictionary keys need not be sorted
/// (libtorrent accepts unsorted keys too); duplicate keys are refused.
pub fn decode(bytes: &[u8], limits: Limits) -> Result<Decoded<'_>, BencodeError> {
    scan(bytes, limits)?;
    let opts = BDecodeOpt::new(limits.max_depth + 1, false, true);
    // The scan accepts only what bip_bencode accepts, so this error path should be unreachable.
    let root = BencodeRef::decode(bytes, opts).map_err(|_| BencodeError::Syntax {
        offset: 0,
        what: "rejected by the bencode decoder",
    })?;
    Ok(Decoded { root })
}

impl<'a> Decoded<'a> {
    /// The top-level value.
    pub fn root(&self) -> Node<'_, 'a> {
        Node { inner: &self.root }
    }
}

/// A borrowed view of one value in a [`Decoded`] document.
#[derive(Clone, Copy)]
pub struct Node<'n, 'a> {
    inner: &'n BencodeRef<'a>,
}

impl std::fmt::Debug for Node<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({})", self.kind_name())
    }
}

impl<'n, 'a> Node<'n, 'a> {
    /// The exact input bytes of this value (for hashing the `info` dictionary).
    pub fn raw(&self) -> &'a [u8] {
        self.inner.buffer()
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        self.inner.int()
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        self.inner.bytes_ext()
    }

    /// The byte string as UTF-8, if this is a byte string and valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.inner.str_ext()
    }

    /// The elements, if this is a list.
    pub fn as_list(&self) -> Option<impl Iterator<Item = Node<'n, 'a>> + 'n> {
        let list = self.inner.list()?;
        Some(list.into_iter().map(|inner| Node { inner }))
    }

    /// The entries in key order, if this is a dictionary.
    pub fn as_dict(&self) -> Option<Vec<(&'a [u8], Node<'n, 'a>)>> {
        let dict = self.inner.dict()?;
        Some(
            dict.to_list()
                .into_iter()
                .map(|(k, inner)| (*k, Node { inner }))
                .collect(),
        )
    }

    /// Whether this is a dictionary.
    pub fn is_dict(&self) -> bool {
        self.inner.dict().is_some()
    }

    /// The value under `key`, if this is a dictionary that has it.
    pub fn get(&self, key: &[u8]) -> Option<Node<'n, 'a>> {
        let inner = self.inner.dict()?.lookup(key)?;
        Some(Node { inner })
    }

    /// "integer", "byte string", "list" or "dictionary", for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self.inner.kind() {
            BencodeRefKind::Int(_) => "integer",
            BencodeRefKind::Bytes(_) => "byte string",
            BencodeRefKind::List(_) => "list",
            BencodeRefKind::Dict(_) => "dictionary",
        }
    }

    /// An owned copy of this value.
    pub fn to_value(&self) -> Value {
        match self.inner.kind() {
            BencodeRefKind::Int(i) => Value::Int(i),
            BencodeRefKind::Bytes(b) => Value::Bytes(b.to_vec()),
            BencodeRefKind::List(_) => Value::List(
                self.as_list()
                    .into_iter()
                    .flatten()
                    .map(|n| n.to_value())
                    .collect(),
            ),
            BencodeRefKind::Dict(_) => Value::Dict(
                self.as_dict()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, n)| (k.to_vec(), n.to_value()))
                    .collect(),
            ),
        }
    }
}

/// An owned bencode value, for building documents (torrents we create, tracker replies, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `i…e`
    Int(i64),
    /// `len:bytes`
    Bytes(Vec<u8>),
    /// `l…e`
    List(Vec<Value>),
    /// `d…e`, encoded with keys in sorted order as BEP 3 requires.
    Dict(BTreeMap<Vec<u8>, Value>),
}

impl Value {
    /// A byte string from text.
    pub fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// A dictionary from `(key, value)` pairs.
    pub fn dict<'k>(entries: impl IntoIterator<Item = (&'k str, Value)>) -> Value {
        Value::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => encode_bytes(b, out),
            Value::List(items) => {
                out.push(b'l');
                items.iter().for_each(|v| v.encode_into(out));
                out.push(b'e');
            }
            Value::Dict(map) => {
                out.push(b'd');
                for (k, v) in map {
                    encode_bytes(k, out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Mutable access to a dictionary entry (tests and builders use it to alter documents).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Value::Dict(map) => map.get_mut(key.as_bytes()),
            _ => None,
        }
    }

    /// Inserts or replaces a dictionary entry; does nothing on a non-dictionary.
    pub fn insert(&mut self, key: &str, value: Value) {
        if let Value::Dict(map) = self {
            map.insert(key.as_bytes().to_vec(), value);
        }
    }

    /// Removes a dictionary entry; does nothing on a non-dictionary.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        match self {
            Value::Dict(map) => map.remove(key.as_bytes()),
            _ => None,
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
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
}
