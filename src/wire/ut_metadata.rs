//! BEP 9 `ut_metadata`: the codec of its three messages (`request`, `data`, `reject`), the serving side
//! (our info dictionary cut into 16 KiB pieces) and the [`MetadataAssembler`] that fetches a magnet's
//! info dictionary from several peers and checks it against the info-hash. Pure: no sockets, no clock.
//!
//! A payload here is the extended message after its BEP 10 header (message id 20 and the peer's
//! `ut_metadata` id). A `data` payload is a bencoded dictionary followed by raw bytes; the dictionary's
//! length is found with [`crate::bencode::scan`], which reports where the first value ends
//! ([`BencodeError::Trailing`]), applied to at most [`MAX_HEADER_LEN`] bytes.
//!
//! The fetched bytes become a torrent through [`torrent_from_info`]: `d4:info<bytes>e` parsed by
//! `Metainfo::from_bytes` gives the same info-hash (SHA-1 of the raw `info` bytes, unchanged).

mod assembler;

use crate::bencode::{decode, scan, BencodeError, Limits, Value};

pub use assembler::{
    Blame, MetadataAssembler, Progress, MAX_OUTSTANDING_PER_SOURCE, REJECT_BACKOFF, REQUEST_TIMEOUT,
};

/// Size of a metadata piece, fixed by BEP 9; only the last piece may be shorter.
pub const METADATA_PIECE_LEN: usize = 16 * 1024;
/// What [`torrent_from_info`] puts around the info dictionary: `d4:info` and `e`.
const TORRENT_PREFIX: &[u8] = b"d4:info";
const TORRENT_SUFFIX: &[u8] = b"e";
/// Largest metadata accepted: the `.torrent` size limit minus the 8 bytes [`torrent_from_info`]
/// wraps around it, so that the wrapped document still passes `Metainfo::from_bytes`.
pub const MAX_METADATA_SIZE: usize =
    Limits::TORRENT.max_len - TORRENT_PREFIX.len() - TORRENT_SUFFIX.len();
/// Most pieces a metadata of [`MAX_METADATA_SIZE`] has: the bound on any `piece` a peer names.
pub const MAX_METADATA_PIECES: u32 = MAX_METADATA_SIZE.div_ceil(METADATA_PIECE_LEN) as u32;
/// Longest bencoded dictionary accepted before a `data` message's bytes: ours is about 50 bytes;
/// the rest is room for keys other clients add, while [`MAX_PAYLOAD_LEN`] stays under the 17 KiB
/// libtorrent accepts.
pub const MAX_HEADER_LEN: usize = 512;
/// Longest `ut_metadata` payload that can be valid: the frame limit of a connection fetching
/// metadata must allow `2 + MAX_PAYLOAD_LEN` (message id, extended id, payload).
pub const MAX_PAYLOAD_LEN: usize = MAX_HEADER_LEN + METADATA_PIECE_LEN;
// libtorrent drops a peer whose ut_metadata frame (ids included) exceeds 17 KiB.
const _: () = assert!(2 + MAX_PAYLOAD_LEN <= 17 * 1024);

/// `msg_type` of a `request`.
const REQUEST: i64 = 0;
/// `msg_type` of a `data`.
const DATA: i64 = 1;
/// `msg_type` of a `reject`.
const REJECT: i64 = 2;

/// One `ut_metadata` message; `data` borrows the payload it was parsed from (or our info bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataMessage<'a> {
    /// Asks for metadata piece `piece`.
    Request { piece: u32 },
    /// Carries metadata piece `piece` of a `total_size`-byte info dictionary.
    Data {
        piece: u32,
        total_size: u32,
        data: &'a [u8],
    },
    /// The sender will not give piece `piece` (it lacks the metadata, or limits requests).
    Reject { piece: u32 },
}

/// Why a `ut_metadata` payload was refused. [`MetadataError::UnknownType`] is to be ignored (BEP 9:
/// future message types); every other error means the peer speaks the extension wrongly: stop using
/// it as a metadata source (or drop it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// No bencoded value at the start of the payload.
    #[error("ut_metadata message is not bencoded (first {MAX_HEADER_LEN} bytes): {0}")]
    Bencode(BencodeError),
    /// The bencoded value is not a dictionary.
    #[error("ut_metadata message is a {0}, not a dictionary")]
    NotADict(&'static str),
    /// A required key is absent or not an integer.
    #[error("ut_metadata message has no integer `{0}`")]
    Missing(&'static str),
    /// A `msg_type` this version does not know: ignore the message.
    #[error("ut_metadata message of unknown type {0} (ignored)")]
    UnknownType(i64),
    /// `piece` beyond the metadata's pieces.
    #[error("ut_metadata piece {piece} out of range (the metadata has {pieces} pieces)")]
    PieceOutOfRange { piece: i64, pieces: u32 },
    /// A metadata size of zero, negative, or above [`MAX_METADATA_SIZE`].
    #[error("metadata size {0} is not within 1..={MAX_METADATA_SIZE} bytes")]
    BadSize(i64),
    /// A `data` message carrying more than one piece.
    #[error("ut_metadata data of {0} bytes, more than the {METADATA_PIECE_LEN}-byte piece size")]
    DataTooLong(usize),
    /// Bytes after the dictionary of a `request` or `reject`.
    #[error("ut_metadata {kind} followed by {len} unexpected bytes")]
    Trailing { kind: &'static str, len: usize },
}

// By hand rather than `#[from]`, which would also make it the `source` and print the cause twice.
impl From<BencodeError> for MetadataError {
    fn from(e: BencodeError) -> Self {
        MetadataError::Bencode(e)
    }
}

impl<'a> MetadataMessage<'a> {
    /// The payload (after the BEP 10 header): the dictionary with sorted keys, then a piece's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, piece) = match *self {
            MetadataMessage::Request { piece } => (REQUEST, piece),
            MetadataMessage::Data { piece, .. } => (DATA, piece),
            MetadataMessage::Reject { piece } => (REJECT, piece),
        };
        let mut dict = Value::dict([
            ("msg_type", Value::Int(kind)),
            ("piece", Value::Int(i64::from(piece))),
        ]);
        if let MetadataMessage::Data { total_size, .. } = *self {
            dict.insert("total_size", Value::Int(i64::from(total_size)));
        }
        let mut out = dict.encode();
        if let MetadataMessage::Data { data, .. } = *self {
            out.extend_from_slice(data);
        }
        out
    }

    /// Parses a payload. Extra dictionary keys are ignored (libtorrent adds `total_size` to a
    /// `reject`); bounds: a piece within [`MAX_METADATA_PIECES`] (within `total_size` for `data`), a
    /// `total_size` within [`MAX_METADATA_SIZE`], at most [`METADATA_PIECE_LEN`] bytes of data.
    pub fn parse(payload: &'a [u8]) -> Result<MetadataMessage<'a>, MetadataError> {
        let header_len = header_len(payload)?;
        let doc = decode(&payload[..header_len], Limits::PEER_MESSAGE)?;
        let root = doc.root();
        if !root.is_dict() {
            return Err(MetadataError::NotADict(root.kind_name()));
        }
        let int = |key: &'static str| {
            root.get(key.as_bytes())
                .and_then(|n| n.as_int())
                .ok_or(MetadataError::Missing(key))
        };
        let kind = int("msg_type")?;
        if !(REQUEST..=REJECT).contains(&kind) {
            return Err(MetadataError::UnknownType(kind));
        }
        let piece = int("piece")?;
        let data = &payload[header_len..];
        let trailing = |kind| MetadataError::Trailing {
            kind,
            len: data.len(),
        };
        match kind {
            REQUEST if data.is_empty() => Ok(MetadataMessage::Request {
                piece: piece_index(piece, MAX_METADATA_PIECES)?,
            }),
            REQUEST => Err(trailing("request")),
            REJECT if data.is_empty() => Ok(MetadataMessage::Reject {
                piece: piece_index(piece, MAX_METADATA_PIECES)?,
            }),
            REJECT => Err(trailing("reject")),
            _ => {
                let total_size = metadata_size(int("total_size")?)?;
                let piece = piece_index(piece, piece_count(total_size as usize))?;
                if data.len() > METADATA_PIECE_LEN {
                    return Err(MetadataError::DataTooLong(data.len()));
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data,
                })
            }
        }
    }

    /// Our answer to a peer's `request` for piece `piece` of our info dictionary `info`: the piece, or
    /// a `reject` when it is out of range (or `info` is beyond what BEP 9 can carry).
    pub fn answer(info: &'a [u8], piece: u32) -> MetadataMessage<'a> {
        match (piece_of(info, piece), u32::try_from(info.len())) {
            (Some(data), Ok(total_size)) if info.len() <= MAX_METADATA_SIZE => {
                MetadataMessage::Data {
                    piece,
                    total_size,
                    data,
                }
            }
            _ => MetadataMessage::Reject { piece },
        }
    }
}

/// Length of the bencoded value at the start of `payload`, looked for in its first
/// [`MAX_HEADER_LEN`] bytes.
fn header_len(payload: &[u8]) -> Result<usize, MetadataError> {
    let head = &payload[..payload.len().min(MAX_HEADER_LEN)];
    match scan(head, Limits::PEER_MESSAGE) {
        Ok(()) => Ok(head.len()),
        Err(BencodeError::Trailing { offset, .. }) => Ok(offset),
        Err(e) => Err(e.into()),
    }
}

/// `piece` as an index below `pieces`.
fn piece_index(piece: i64, pieces: u32) -> Result<u32, MetadataError> {
    u32::try_from(piece)
        .ok()
        .filter(|&p| p < pieces)
        .ok_or(MetadataError::PieceOutOfRange { piece, pieces })
}

/// Checks a metadata size a peer claims (`total_size`, or `metadata_size` in its BEP 10 handshake):
/// 1 to [`MAX_METADATA_SIZE`] bytes.
pub fn metadata_size(claimed: i64) -> Result<u32, MetadataError> {
    usize::try_from(claimed)
        .ok()
        .filter(|&n| (1..=MAX_METADATA_SIZE).contains(&n))
        .map(|n| n as u32)
        .ok_or(MetadataError::BadSize(claimed))
}

/// Number of metadata pieces of a `size`-byte info dictionary.
pub fn piece_count(size: usize) -> u32 {
    u32::try_from(size.div_ceil(METADATA_PIECE_LEN)).unwrap_or(u32::MAX)
}

/// Piece `piece` of the info dictionary `info` (16 KiB, the last one shorter), or `None` past the end.
pub fn piece_of(info: &[u8], piece: u32) -> Option<&[u8]> {
    let start = (piece as usize).checked_mul(METADATA_PIECE_LEN)?;
    if start >= info.len() {
        return None;
    }
    Some(&info[start..info.len().min(start + METADATA_PIECE_LEN)])
}

/// Expected length of piece `piece` of a `size`-byte metadata (the caller checked `piece` is in
/// range).
fn piece_len(size: u32, piece: u32) -> usize {
    (size as usize)
        .saturating_sub(piece as usize * METADATA_PIECE_LEN)
        .min(METADATA_PIECE_LEN)
}

/// A `.torrent` document holding only the fetched info dictionary, `d4:info<info>e`, for
/// `Metainfo::from_bytes`: its info-hash is the SHA-1 of exactly `info`. Trackers and web seeds from
/// the magnet link are set on the resulting `Metainfo` by the caller.
pub fn torrent_from_info(info: &[u8]) -> Vec<u8> {
    [TORRENT_PREFIX, info, TORRENT_SUFFIX].concat()
}

/// A whole `.torrent` of the fetched info dictionary with a magnet link's trackers (one tier each,
/// as BEP 12 reads a list of `tr`) and web seeds: what is saved beside a magnet download so a later
/// run resumes without peers. Keys in sorted order; `info` byte for byte as fetched.
pub fn torrent_with(info: &[u8], trackers: &[String], web_seeds: &[String]) -> Vec<u8> {
    torrent_with_layers(info, trackers, web_seeds, &[])
}

/// [`torrent_with`] plus BEP 52 `piece layers` (`pieces root` -> the file's piece layer), as
/// fetched from peers for a v2 or hybrid magnet link; none when `layers` is empty.
pub fn torrent_with_layers(
    info: &[u8],
    trackers: &[String],
    web_seeds: &[String],
    layers: &[(crate::merkle::Hash, Vec<crate::merkle::Hash>)],
) -> Vec<u8> {
    use crate::bencode::Value;
    let mut out = b"d".to_vec();
    let mut put = |key: &str, value: &Value| {
        out.extend_from_slice(format!("{}:{key}", key.len()).as_bytes());
        out.extend_from_slice(&value.encode());
    };
    if let Some(first) = trackers.first() {
        put("announce", &Value::str(first));
        let tiers = trackers
            .iter()
            .map(|t| Value::List(vec![Value::str(t)]))
            .collect();
        put("announce-list", &Value::List(tiers));
    }
    out.extend_from_slice(b"4:info");
    out.extend_from_slice(info);
    let mut sorted: Vec<_> = layers.iter().collect();
    sorted.sort_by_key(|(root, _)| *root);
    sorted.dedup_by_key(|(root, _)| *root);
    if !sorted.is_empty() {
        out.extend_from_slice(b"12:piece layers");
        out.push(b'd');
        for (root, layer) in sorted {
            out.extend_from_slice(b"32:");
            out.extend_from_slice(root);
            out.extend_from_slice(format!("{}:", 32 * layer.len()).as_bytes());
            layer.iter().for_each(|h| out.extend_from_slice(h));
        }
        out.push(b'e');
    }
    if !web_seeds.is_empty() {
        let seeds = Value::List(web_seeds.iter().map(|w| Value::str(w)).collect());
        out.extend_from_slice(b"8:url-list");
        out.extend_from_slice(&seeds.encode());
    }
    out.push(b'e');
    out
}

#[cfg(test)]
mod tests;
