//! The BEP 52 side of `pixtorrent create --v2` / `--hybrid`, laid out as libtorrent 2.0's
//! `create_torrent` lays it out: each file hashed in its own pieces (a SHA-256 Merkle tree per file),
//! BEP 47 pad files in a hybrid's v1 `files` so every file starts on a piece boundary, and the `info`
//! (`file tree`, `meta version`; for a hybrid also `pieces` and `files` or `length`) and the
//! `piece layers` built from the hashes. Layout and encoding are pure; [`hash`] reads the files.

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

use super::{file_entry, open_all, parallel, read_at, CreateError, Input};
use crate::bencode::Value;
use crate::merkle::{self, Hash};

/// One piece to hash: `len` bytes of file `file` from `offset`, a multiple of the piece length. A v2
/// piece never spans two files; in a hybrid, unit `i` is v1 piece `i` too (the pad after a file fills
/// its last piece).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unit {
    pub file: usize,
    pub offset: u64,
    pub len: u32,
}

/// A file's v2 hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct FileHashes {
    /// Its `pieces root`; `None` for an empty file, which has none.
    pub root: Option<Hash>,
    /// Its piece layer: one hash per piece, only for a file larger than one piece (BEP 52 lists
    /// no layer for smaller files, whose root is their only piece hash).
    pub layer: Vec<Hash>,
}

/// What hashing gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Hashed {
    /// Per input file, in order.
    pub files: Vec<FileHashes>,
    /// A hybrid's v1 piece hashes (pads included); empty for v2 only.
    pub v1: Vec<[u8; 20]>,
}

/// The pad after each file, as libtorrent 2.0 places them (`file_storage::canonicalize`): with more
/// than one file, every non-empty file is followed by zeros up to the next piece boundary, the last
/// file too; an empty file gets none (it starts and ends on a boundary already), and a torrent of one
/// file gets none at all. So every file starts on a piece boundary.
pub(super) fn pads(lengths: &[u64], piece_length: u32) -> Vec<u64> {
    let piece = u64::from(piece_length);
    lengths
        .iter()
        .map(|&len| {
            if lengths.len() > 1 && len > 0 {
                (piece - len % piece) % piece
            } else {
                0
            }
        })
        .collect()
}

/// How many pieces [`units`] lists, without listing them.
pub(super) fn piece_count(lengths: &[u64], piece_length: u32) -> u64 {
    lengths
        .iter()
        .map(|len| len.div_ceil(u64::from(piece_length)))
        .sum()
}

/// Every piece of every non-empty file, in order.
pub(super) fn units(lengths: &[u64], piece_length: u32) -> Vec<Unit> {
    let piece = u64::from(piece_length);
    let mut out = Vec::new();
    for (file, &len) in lengths.iter().enumerate() {
        let mut offset = 0;
        while offset < len {
            let run = (len - offset).min(piece) as u32;
            out.push(Unit {
                file,
                offset,
                len: run,
            });
            offset += piece;
        }
    }
    out
}

/// Reads and hashes every piece of `inputs` on `threads` threads (0: every core), a piece at a time
/// per thread: the SHA-256 root over its 16 KiB blocks (padded as BEP 52 says) and, for a `hybrid`,
/// the SHA-1 of the piece with its pad. `progress` gets the number of pieces done.
pub(super) fn hash(
    inputs: &[Input],
    piece_length: u32,
    hybrid: bool,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Hashed, CreateError> {
    let lengths: Vec<u64> = inputs.iter().map(|i| i.len).collect();
    let units = units(&lengths, piece_length);
    // A hybrid's v1 pieces end with the pad after their file, except in a torrent of one file.
    let padded = hybrid && inputs.len() > 1;
    let files = open_all(inputs)?;
    let piece = piece_length as usize;
    let bad = || CreateError::BadPieceSize(u64::from(piece_length));
    let hashes = parallel(units.len(), threads, progress, |i, buf| {
        let u = units[i];
        let len = u.len as usize;
        // The piece, then zeros up to its end when a pad follows (only a hybrid's SHA-1 reads them).
        let end = if padded { piece } else { len };
        buf.resize(end, 0);
        read_at(&files[u.file], &inputs[u.file], &mut buf[..len], u.offset)?;
        buf[len..end].fill(0);
        let height = merkle::piece_root_height(lengths[u.file], piece_length).ok_or_else(bad)?;
        let v2 = merkle::piece_root(&buf[..len], height).ok_or_else(bad)?;
        let v1 = if hybrid {
            Sha1::digest(&buf[..end]).into()
        } else {
            [0; 20]
        };
        Ok((v2, v1))
    })?;
    let v2: Vec<Hash> = hashes.iter().map(|h| h.0).collect();
    Ok(Hashed {
        files: file_hashes(&lengths, &units, &v2, piece_length),
        v1: if hybrid {
            hashes.iter().map(|h| h.1).collect()
        } else {
            Vec::new()
        },
    })
}

/// Each file's root and piece layer from its pieces' hashes (`v2`, one per unit): a file of at most
/// one piece has its one hash as root and no layer; a larger one keeps the layer, and its root is the
/// layer hashed up (padded as BEP 52 says).
pub(super) fn file_hashes(
    lengths: &[u64],
    units: &[Unit],
    v2: &[Hash],
    piece_length: u32,
) -> Vec<FileHashes> {
    let mut files = vec![FileHashes::default(); lengths.len()];
    for (u, h) in units.iter().zip(v2) {
        if let Some(f) = files.get_mut(u.file) {
            f.layer.push(*h);
        }
    }
    for (f, &len) in files.iter_mut().zip(lengths) {
        if len > u64::from(piece_length) {
            f.root = merkle::root_from_piece_layer(&f.layer, piece_length);
        } else {
            f.root = f.layer.pop();
            f.layer.clear();
        }
    }
    files
}

/// The `info` of a v2 or `hybrid` torrent (`private` is added by the caller). The `file tree` holds
/// each file under its path (a single-file torrent: under its name), `length` and, unless empty,
/// `pieces root`; a hybrid adds v1 `pieces`, and `length` (single file) or `files` with the pads.
pub(super) fn info(
    name: &str,
    single: bool,
    inputs: &[Input],
    piece_length: u32,
    hashed: &Hashed,
    hybrid: bool,
) -> Value {
    let mut tree = Value::Dict(BTreeMap::new());
    for (input, f) in inputs.iter().zip(&hashed.files) {
        let mut props = Value::dict([("length", Value::Int(input.len as i64))]);
        if let Some(root) = f.root {
            props.insert("pieces root", Value::Bytes(root.to_vec()));
        }
        insert(&mut tree, &input.rel, Value::dict([("", props)]));
    }
    let mut info = Value::dict([
        ("file tree", tree),
        ("meta version", Value::Int(2)),
        ("name", Value::str(name)),
        ("piece length", Value::Int(i64::from(piece_length))),
    ]);
    if hybrid {
        info.insert("pieces", Value::Bytes(hashed.v1.concat()));
        if single {
            info.insert("length", Value::Int(inputs[0].len as i64));
        } else {
            info.insert("files", v1_files(inputs, piece_length));
        }
    }
    info
}

/// A hybrid's v1 `files`: each file, then its pad (`.pad/<length>`, `attr` `p`) if it has one.
fn v1_files(inputs: &[Input], piece_length: u32) -> Value {
    let lengths: Vec<u64> = inputs.iter().map(|i| i.len).collect();
    let mut files = Vec::with_capacity(inputs.len() * 2);
    for (input, pad) in inputs.iter().zip(pads(&lengths, piece_length)) {
        files.push(file_entry(&input.rel, input.len, false));
        if pad > 0 {
            files.push(file_entry(&[".pad".into(), pad.to_string()], pad, true));
        }
    }
    Value::List(files)
}

/// The top-level `piece layers`: each file larger than one piece, its root -> its layer concatenated.
/// Identical files share one entry. Written even when empty, as libtorrent writes it.
pub(super) fn piece_layers(hashed: &Hashed) -> Value {
    Value::Dict(
        hashed
            .files
            .iter()
            .filter(|f| !f.layer.is_empty())
            .filter_map(|f| Some((f.root?.to_vec(), Value::Bytes(f.layer.concat()))))
            .collect(),
    )
}

/// Puts `leaf` at `path` in the nested dictionaries of `tree`, making directories on the way.
fn insert(tree: &mut Value, path: &[String], leaf: Value) {
    let Some((last, dirs)) = path.split_last() else {
        return;
    };
    let mut node = tree;
    for dir in dirs {
        let Value::Dict(map) = node else {
            return;
        };
        node = map
            .entry(dir.as_bytes().to_vec())
            .or_insert_with(|| Value::Dict(BTreeMap::new()));
    }
    node.insert(last, leaf);
}

#[cfg(test)]
mod tests;
