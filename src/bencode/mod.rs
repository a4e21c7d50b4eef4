//! Bencode: the one place that touches `bip_bencode`.
//! Decoding with limits (size, depth, item count, tree memory) and precise errors, raw byte spans, and
//! an encoder.
//!
//! Decoding is two passes over borrowed bytes: [`scan`] is a linear validator that enforces [`Limits`]
//! and names the exact offset of any fault; only input that passes it reaches `bip_bencode`, which builds
//! the borrowed tree. The scan exists because `bip_bencode` has no size or memory limit, reports trailing
//! bytes as "incomplete number of bytes", and its error-chain errors are neither `Sync` nor cheap (they
//! capture a backtrace when `RUST_BACKTRACE` is set).

mod scan;

use std::collections::BTreeMap;

use bip_bencode::ext::BRefAccessExt;
use bip_bencode::{BDecodeOpt, BRefAccess, BencodeRef, BencodeRefKind};

pub use scan::{scan, Limits, DICT_COST, LIST_COST, VALUE_COST};

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

    /// Whether every dictionary in this value lists its keys in strictly increasing order as written
    /// (BEP 3). The decoder accepts unsorted keys, like libtorrent; BEP 52 metadata must be sorted
    /// (libtorrent refuses a v2 `info` that is not). Reads the keys' order from the raw bytes.
    pub fn keys_sorted(&self) -> bool {
        match self.inner.kind() {
            BencodeRefKind::List(_) => self
                .as_list()
                .into_iter()
                .flatten()
                .all(|n| n.keys_sorted()),
            BencodeRefKind::Dict(_) => self.dict_keys_sorted(),
            _ => true,
        }
    }

    fn dict_keys_sorted(&self) -> bool {
        let raw = self.raw();
        let mut pos = 1;
        let mut previous: Option<&[u8]> = None;
        while raw.get(pos).is_some_and(|&b| b != b'e') {
            let Some(colon) = raw[pos..].iter().position(|&b| b == b':').map(|c| pos + c) else {
                return false;
            };
            let len = std::str::from_utf8(&raw[pos..colon])
                .ok()
                .and_then(|t| t.parse::<usize>().ok());
            let Some(key) = len.and_then(|l| raw.get(colon + 1..colon + 1 + l)) else {
                return false;
            };
            let Some(value) = self.get(key) else {
                return false;
            };
            if previous.is_some_and(|p| key <= p) || !value.keys_sorted() {
                return false;
            }
            previous = Some(key);
            pos = colon + 1 + key.len() + value.raw().len();
        }
        true
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
            Value::Int(i) => put_int(out, *i),
            Value::Bytes(b) => put_bytes(out, b),
            Value::List(items) => {
                out.push(b'l');
                items.iter().for_each(|v| v.encode_into(out));
                out.push(b'e');
            }
            Value::Dict(map) => {
                out.push(b'd');
                for (k, v) in map {
                    put_bytes(out, k);
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

// The streaming writer: [`Value::encode_into`] and the tracker replies (`tracker::proto`) both write
// through these, so there is one encoder. The caller writes `d`/`l`/`e` and keeps dictionary keys
// sorted; these write one string or integer, without allocating.

/// Appends a byte string, `len:bytes`.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_decimal(out, b.len() as u64);
    out.push(b':');
    out.extend_from_slice(b);
}

/// Appends an integer, `i…e`.
pub fn put_int(out: &mut Vec<u8>, n: i64) {
    out.push(b'i');
    if n < 0 {
        out.push(b'-');
    }
    put_decimal(out, n.unsigned_abs());
    out.push(b'e');
}

/// Appends a non-negative integer, `i…e` (counts wider than `i64` allows are still valid bencode).
pub fn put_uint(out: &mut Vec<u8>, n: u64) {
    out.push(b'i');
    put_decimal(out, n);
    out.push(b'e');
}

/// Appends `n` in decimal digits.
fn put_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20]; // u64::MAX has 20 digits
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests;
