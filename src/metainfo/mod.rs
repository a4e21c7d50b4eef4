//! `.torrent` bytes -> [`Metainfo`]: the info-hashes over the raw `info` bytes, and every validation rule
//! (sizes, counts, paths; for BEP 52, the file tree, piece layers and a hybrid's two halves) with an
//! error a user can act on. Pure: no files, no network.
//!
//! Required fields are checked strictly; optional metadata (`announce-list`, `url-list`, `comment`, ...)
//! of the wrong shape is skipped, as libtorrent does, because it cannot corrupt a download.

mod files;
#[cfg(test)]
pub(crate) mod testkit;
mod tree;
mod v2;

use std::path::PathBuf;

use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::bencode::{self, BencodeError, Limits, Node};
use crate::types::{InfoHash, InfoHashV2, Lengths};

pub use files::{FileAttr, FileEntry};
pub use v2::{MetaVersion, V2Piece};

/// Largest piece length accepted: 256 MiB, above any real torrent's and small enough to buffer one piece.
pub const MAX_PIECE_LENGTH: u32 = 256 * 1024 * 1024;
/// Most trackers kept from one torrent, all tiers together; the rest are ignored.
pub const MAX_TRACKERS: usize = 256;
/// Most web seeds kept from one torrent; the rest are ignored.
pub const MAX_WEB_SEEDS: usize = 64;

/// A parsed, validated `.torrent` file.
#[derive(Debug, Clone)]
pub struct Metainfo {
    /// The swarm's 20-byte id, for handshakes, trackers and the DHT: SHA-1 of the exact bytes of the
    /// `info` value for v1 and hybrid torrents; for a v2-only torrent, its SHA-256 truncated (BEP 52).
    pub info_hash: InfoHash,
    /// SHA-256 of the exact `info` bytes, when the torrent has a usable v2 side (BEP 52).
    pub info_hash_v2: Option<InfoHashV2>,
    /// The `info` dictionary.
    pub info: Info,
    /// `announce`, if present and text.
    pub announce: Option<String>,
    /// `announce-list` tiers as given (BEP 12), empty tiers and duplicates removed.
    pub announce_list: Vec<Vec<String>>,
    /// `url-list` web seeds (BEP 19), from a string or a list.
    pub url_list: Vec<String>,
    /// `comment` (`comment.utf-8` preferred).
    pub comment: Option<String>,
    /// `created by`.
    pub created_by: Option<String>,
    /// `creation date`, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// The raw `info` bytes (for BEP 9 metadata exchange later).
    pub info_bytes: Vec<u8>,
}

/// The `info` dictionary.
#[derive(Debug, Clone)]
pub struct Info {
    /// `name` (`name.utf-8` preferred): the file name (single-file) or the top directory (multi-file).
    pub name: String,
    /// Size arithmetic: total length (pad files included), piece length, piece count.
    pub lengths: Lengths,
    /// One SHA-1 per piece; empty for a v2-only torrent.
    pub piece_hashes: Vec<[u8; 20]>,
    /// `private` = 1 (BEP 27): no DHT, no PEX.
    pub private: bool,
    /// The files in torrent order, with their offsets in the byte stream. A single-file torrent has one.
    /// A v2-only torrent's files come with BEP 47 pad files between them, as a hybrid's would: every
    /// file starts on a piece boundary.
    pub files: Vec<FileEntry>,
    /// Whether the torrent has the `files` list (its files live under the `name` directory).
    pub multi_file: bool,
    /// Whether `meta version` 2 is present beside v1 `pieces` (a BEP 52 hybrid), whether or not its
    /// v2 part is usable: see [`Info::version`].
    pub hybrid: bool,
    /// The v2 side, when the torrent has a valid one.
    v2: Option<v2::V2Info>,
    /// Why a hybrid's v2 side was set aside.
    v2_set_aside: Option<MetainfoError>,
}

impl Info {
    /// Where file `index` goes, relative to the output directory.
    pub fn file_path(&self, index: usize) -> Option<PathBuf> {
        let file = self.files.get(index)?;
        let mut path = PathBuf::new();
        if self.multi_file {
            path.push(&self.name);
        }
        path.extend(&file.path);
        Some(path)
    }
}

/// Why a torrent file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetainfoError {
    /// Not bencode, or over a limit.
    #[error("not a valid torrent file: {0}")]
    Bencode(BencodeError),
    /// The top level is not a dictionary.
    #[error("not a torrent file: the top level is a {0}, not a dictionary")]
    NotADict(&'static str),
    /// A required key is absent.
    #[error("invalid torrent: missing required key `{0}`")]
    Missing(String),
    /// A required key has the wrong type.
    #[error("invalid torrent: `{key}` should be {expected}, found a {found}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A number out of its allowed range.
    #[error("invalid torrent: `{key}` is {value}: {why}")]
    BadNumber {
        key: String,
        value: i64,
        why: &'static str,
    },
    /// `pieces` is not a whole number of SHA-1 hashes.
    #[error("invalid torrent: `info.pieces` is {0} bytes, not a multiple of 20")]
    PiecesLength(usize),
    /// `pieces` does not match the total size.
    #[error("invalid torrent: {total} bytes in {piece_length}-byte pieces need {expected} piece hashes, `info.pieces` has {actual}")]
    PieceCount {
        total: u64,
        piece_length: u32,
        expected: u64,
        actual: usize,
    },
    /// An unsafe or impossible path.
    #[error("invalid torrent: `{key}` {why}")]
    BadPath { key: String, why: &'static str },
    /// Two files (or a file and a directory) on the same path.
    #[error("invalid torrent: two files map to the same path `{0}`")]
    DuplicatePath(String),
    /// Sizes that do not fit in 64 bits.
    #[error("invalid torrent: file sizes add up past 2^64 bytes")]
    Overflow,
    /// Nothing to download.
    #[error("invalid torrent: it holds no data (total size 0)")]
    Empty,
    /// `info` has both `length` and `files`.
    #[error("invalid torrent: `info` has both `length` and `files`")]
    LengthAndFiles,
    /// BEP 52 without a v1 part, from [`Metainfo::from_bytes`] (downloads need v1 piece hashes).
    #[error("unsupported torrent: BitTorrent v2-only (no v1 `pieces`); only v1 and hybrid torrents are supported")]
    V2Only,
    /// A `meta version` other than 2 without a v1 part to fall back on.
    #[error("unsupported torrent: `meta version` {0} (only BitTorrent v1 and v2 are known)")]
    UnsupportedVersion(i64),
    /// A v2 `info` with keys out of order: its info-hash would be ambiguous (libtorrent refuses it too).
    #[error("invalid torrent: a v2 `info` dictionary must have its keys in sorted order")]
    UnsortedKeys,
    /// A malformed `file tree` entry.
    #[error("invalid torrent: `{key}` {why}")]
    BadFileTree { key: String, why: &'static str },
    /// A missing or wrong piece layer.
    #[error("invalid torrent: the piece layer of `{file}` {why}")]
    PieceLayer { file: String, why: &'static str },
    /// A hybrid whose v1 and v2 parts describe different files.
    #[error("invalid hybrid torrent: its v1 and v2 parts describe different files: {0}")]
    Inconsistent(String),
    /// More pieces than a `u32` counts.
    #[error("invalid torrent: more than 2^32 pieces")]
    TooManyPieces,
}

// By hand rather than `#[from]`, which would also make it the `source` and print the cause twice.
impl From<BencodeError> for MetainfoError {
    fn from(e: BencodeError) -> Self {
        MetainfoError::Bencode(e)
    }
}

impl Metainfo {
    /// Parses and validates a `.torrent` file that can be downloaded today: v1 or hybrid (a v2-only
    /// torrent is [`MetainfoError::V2Only`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        Metainfo::parse(bytes, false)
    }

    /// Parses and validates a `.torrent` file of any version, v2-only included (its `piece_hashes`
    /// are empty: see [`Info::version`]).
    pub fn from_bytes_any_version(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        Metainfo::parse(bytes, true)
    }

    fn parse(bytes: &[u8], v2_only_ok: bool) -> Result<Metainfo, MetainfoError> {
        let doc = bencode::decode(bytes, Limits::TORRENT)?;
        let root = doc.root();
        if !root.is_dict() {
            return Err(MetainfoError::NotADict(root.kind_name()));
        }
        let info_node = required(root, "info", "")?;
        if !info_node.is_dict() {
            return Err(wrong_type("info", "a dictionary", info_node));
        }
        let info = parse_info(info_node, root.get(b"piece layers"), v2_only_ok)?;
        let info_bytes = info_node.raw().to_vec();
        let info_hash_v2 = (info.version() != MetaVersion::V1)
            .then(|| InfoHashV2(Sha256::digest(&info_bytes).into()));
        let info_hash = match info_hash_v2 {
            Some(v2) if info.version() == MetaVersion::V2 => v2.truncated(),
            _ => InfoHash(Sha1::digest(&info_bytes).into()),
        };

        let mut seen = Vec::new();
        let announce = root.get(b"announce").and_then(text).and_then(|url| {
            let url = url.trim().to_string();
            (!url.is_empty()).then_some(url)
        });
        let mut announce_list = Vec::new();
        for tier in root
            .get(b"announce-list")
            .and_then(|n| n.as_list())
            .into_iter()
            .flatten()
        {
            let urls: Vec<String> = tier
                .as_list()
                .into_iter()
                .flatten()
                .filter_map(text)
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .collect();
            let fresh = keep_new(urls, &mut seen, MAX_TRACKERS);
            if !fresh.is_empty() {
                announce_list.push(fresh);
            }
        }
        let url_list = match root.get(b"url-list") {
            Some(n) if n.as_bytes().is_some() => text(n).into_iter().collect(),
            Some(n) => n.as_list().into_iter().flatten().filter_map(text).collect(),
            None => Vec::new(),
        };
        let url_list = keep_new(
            url_list
                .into_iter()
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .collect(),
            &mut Vec::new(),
            MAX_WEB_SEEDS,
        );
        Ok(Metainfo {
            info_hash,
            info_hash_v2,
            info,
            announce,
            announce_list,
            url_list,
            comment: prefer_utf8(root, "comment").and_then(text),
            created_by: root.get(b"created by").and_then(text),
            creation_date: root.get(b"creation date").and_then(|n| n.as_int()),
            info_bytes,
        })
    }

    /// The tracker tiers to use (BEP 12): `announce-list` when it has any URL, else `announce` alone.
    pub fn tiers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            self.announce_list.clone()
        } else {
            self.announce.iter().map(|a| vec![a.clone()]).collect()
        }
    }
}

/// Keeps the URLs not seen before, up to `max` seen in all.
fn keep_new(urls: Vec<String>, seen: &mut Vec<String>, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    for url in urls {
        if seen.len() < max && !seen.contains(&url) {
            seen.push(url.clone());
            out.push(url);
        }
    }
    out
}

/// The `info` dictionary; `layers` is the top-level `piece layers` (BEP 52), if any.
fn parse_info(
    info: Node<'_, '_>,
    layers: Option<Node<'_, '_>>,
    v2_only_ok: bool,
) -> Result<Info, MetainfoError> {
    let name_node =
        prefer_utf8(info, "name").ok_or_else(|| MetainfoError::Missing("info.name".into()))?;
    let name = files::path_component(name_node, "info.name")?;

    let piece_length = required_int(info, "piece length", "info.")?;
    if piece_length <= 0 || piece_length > i64::from(MAX_PIECE_LENGTH) {
        return Err(MetainfoError::BadNumber {
            key: "info.piece length".into(),
            value: piece_length,
            why: "must be between 1 byte and 256 MiB",
        });
    }
    let piece_length = piece_length as u32;
    let meta_version = info.get(b"meta version").and_then(|n| n.as_int());

    let pieces = match info.get(b"pieces") {
        Some(p) => p
            .as_bytes()
            .ok_or_else(|| wrong_type("info.pieces", "a byte string", p))?,
        None if !v2_only_ok && info.get(b"file tree").is_some() => {
            return Err(MetainfoError::V2Only)
        }
        None if v2_only_ok && (meta_version.is_some() || info.get(b"file tree").is_some()) => {
            return v2_only_info(info, layers, name, piece_length, meta_version);
        }
        None => return Err(MetainfoError::Missing("info.pieces".into())),
    };
    let mut out = v1_info(info, name, piece_length, pieces)?;
    match meta_version {
        Some(2) => match v2::hybrid(info, layers, piece_length, &out.files) {
            Ok(v2) => out.v2 = Some(v2),
            Err(e) => out.v2_set_aside = Some(e),
        },
        Some(n) => out.v2_set_aside = Some(MetainfoError::UnsupportedVersion(n)),
        None => {}
    }
    Ok(out)
}

/// The v1 side of `info`, whose `pieces` are given: files, sizes, SHA-1 piece hashes.
fn v1_info(
    info: Node<'_, '_>,
    name: String,
    piece_length: u32,
    pieces: &[u8],
) -> Result<Info, MetainfoError> {
    if pieces.len() % 20 != 0 {
        return Err(MetainfoError::PiecesLength(pieces.len()));
    }
    let (files, multi_file) = match (info.get(b"length"), info.get(b"files")) {
        (Some(_), Some(_)) => return Err(MetainfoError::LengthAndFiles),
        (Some(_), None) => (vec![files::single_file(info, &name)?], false),
        (None, Some(list)) => (files::file_list(list)?, true),
        (None, None) => return Err(MetainfoError::Missing("info.length` or `info.files".into())),
    };
    let total = files.last().map_or(0, |f| f.offset + f.length);
    if total == 0 {
        return Err(MetainfoError::Empty);
    }
    let actual = pieces.len() / 20;
    let expected = total.div_ceil(u64::from(piece_length));
    let count_error = MetainfoError::PieceCount {
        total,
        piece_length,
        expected,
        actual,
    };
    if actual as u64 != expected {
        return Err(count_error);
    }
    // Cannot fail once the counts agree (`pieces` is far under 2^32 hashes), but stays checked.
    let lengths = Lengths::new(total, piece_length).ok_or(count_error)?;
    let piece_hashes = pieces
        .chunks_exact(20)
        .map(|c| {
            let mut h = [0u8; 20];
            h.copy_from_slice(c);
            h
        })
        .collect();
    Ok(Info {
        name,
        lengths,
        piece_hashes,
        private: info.get(b"private").and_then(|n| n.as_int()) == Some(1),
        files,
        multi_file,
        hybrid: info.get(b"meta version").and_then(|n| n.as_int()) == Some(2),
        v2: None,
        v2_set_aside: None,
    })
}

/// A v2-only `info` (no `pieces`): `meta version` 2 and a valid `file tree` are required.
fn v2_only_info(
    info: Node<'_, '_>,
    layers: Option<Node<'_, '_>>,
    name: String,
    piece_length: u32,
    meta_version: Option<i64>,
) -> Result<Info, MetainfoError> {
    match meta_version {
        Some(2) => {}
        Some(n) => return Err(MetainfoError::UnsupportedVersion(n)),
        None => return Err(MetainfoError::Missing("info.meta version".into())),
    }
    let (files, multi_file, v2) = v2::v2_only(info, layers, piece_length)?;
    let total = files.last().map_or(0, |f| f.offset + f.length);
    if total == 0 {
        return Err(MetainfoError::Empty);
    }
    Ok(Info {
        name,
        lengths: Lengths::new(total, piece_length).ok_or(MetainfoError::TooManyPieces)?,
        piece_hashes: Vec::new(),
        private: info.get(b"private").and_then(|n| n.as_int()) == Some(1),
        files,
        multi_file,
        hybrid: false,
        v2: Some(v2),
        v2_set_aside: None,
    })
}

/// `key.utf-8` when present and of the same kind as `key` (a name is a string, a path a list), else `key`.
fn prefer_utf8<'n, 'a>(dict: Node<'n, 'a>, key: &str) -> Option<Node<'n, 'a>> {
    let plain = dict.get(key.as_bytes());
    let variant = dict.get(format!("{key}.utf-8").as_bytes());
    match (plain, variant) {
        (Some(p), Some(v)) if p.kind_name() != v.kind_name() => Some(p),
        (p, v) => v.or(p),
    }
}

/// A byte string as text, invalid UTF-8 replaced (old torrents used local code pages).
fn text(node: Node<'_, '_>) -> Option<String> {
    node.as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn required<'n, 'a>(
    dict: Node<'n, 'a>,
    key: &str,
    prefix: &str,
) -> Result<Node<'n, 'a>, MetainfoError> {
    dict.get(key.as_bytes())
        .ok_or_else(|| MetainfoError::Missing(format!("{prefix}{key}")))
}

fn required_int(dict: Node<'_, '_>, key: &str, prefix: &str) -> Result<i64, MetainfoError> {
    let node = required(dict, key, prefix)?;
    node.as_int()
        .ok_or_else(|| wrong_type(&format!("{prefix}{key}"), "an integer", node))
}

fn wrong_type(key: &str, expected: &'static str, found: Node<'_, '_>) -> MetainfoError {
    MetainfoError::WrongType {
        key: key.to_string(),
        expected,
        found: found.kind_name(),
    }
}

#[cfg(test)]
mod tests;
