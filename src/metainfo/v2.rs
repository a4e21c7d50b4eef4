//! The BEP 52 side of a torrent: its v2 part read and checked (sorted keys, piece length, `file
//! tree`, the `piece layers` against each `pieces root`, a hybrid's v1 file list against its tree),
//! and the v2 piece layout, where a piece never spans two files, with each piece's expected hash.

use std::collections::HashMap;

use super::files::FileEntry;
use super::tree::{self, Tree};
use super::{wrong_type, Info, MetainfoError};
use crate::bencode::Node;
use crate::merkle::{self, Hash};

/// The formats a torrent can be downloaded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaVersion {
    /// BEP 3 only: SHA-1 piece hashes.
    V1,
    /// BEP 52 only: per-file SHA-256 Merkle trees, no v1 `pieces`.
    V2,
    /// Both, describing the same bytes (v1 with BEP 47 pad files).
    Hybrid,
}

/// The v2 side of a torrent (see [`Info::version`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct V2Info {
    /// Per entry of `Info::files`: its `pieces root` (`None` for pad files, empty files, links).
    roots: Vec<Option<Hash>>,
    /// Per entry of `Info::files`: its piece layer, for files larger than one piece when the torrent
    /// carried `piece layers`.
    layers: Vec<Option<Vec<Hash>>>,
    /// Whether the torrent carried `piece layers`.
    layers_known: bool,
    /// (first piece, index in `Info::files`) of every file that holds data, in order.
    starts: Vec<(u32, usize)>,
}

/// One v2 piece: a run of one file's bytes, never more than the piece length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2Piece {
    /// The file, an index into `Info::files`.
    pub file: usize,
    /// The piece's index among its file's pieces.
    pub index_in_file: u32,
    /// Offset of its first byte in the file.
    pub offset: u64,
    /// Its length: the piece length, or less for a file's last piece.
    pub len: u32,
    /// Height of the tree node it is checked against: `merkle::piece_root(data, height)` must equal
    /// [`Info::v2_piece_hash`] (the piece layer, or the root of a file of at most one piece).
    pub height: u32,
}

/// Checks common to every v2 `info`: sorted keys, a BEP 52 piece length, a `file tree`. Returns the
/// tree, read.
fn read_tree(info: Node<'_, '_>, piece_length: u32) -> Result<Tree, MetainfoError> {
    if !info.keys_sorted() {
        return Err(MetainfoError::UnsortedKeys);
    }
    if merkle::piece_height(piece_length).is_none() {
        return Err(MetainfoError::BadNumber {
            key: "info.piece length".into(),
            value: i64::from(piece_length),
            why: "must be a power of two of at least 16 KiB in a v2 torrent",
        });
    }
    let node = info
        .get(b"file tree")
        .ok_or_else(|| MetainfoError::Missing("info.file tree".into()))?;
    tree::file_tree(node, info.get(b"files").is_some())
}

/// A v2-only torrent: its files (piece-aligned, pad files between them), whether it is multi-file,
/// and its v2 side. `layers`: the top-level `piece layers`, if any.
pub(super) fn v2_only(
    info: Node<'_, '_>,
    layers: Option<Node<'_, '_>>,
    piece_length: u32,
) -> Result<(Vec<FileEntry>, bool, V2Info), MetainfoError> {
    let tree = read_tree(info, piece_length)?;
    let (files, roots) = tree::aligned(&tree.files, piece_length)?;
    let v2 = V2Info::new(&files, roots, layers, piece_length)?;
    Ok((files, !tree.single, v2))
}

/// The v2 side of a hybrid, once its tree matches `v1`, the v1 file list (BEP 52: same files, order
/// and piece alignment; libtorrent's `files_compatible` rule).
pub(super) fn hybrid(
    info: Node<'_, '_>,
    layers: Option<Node<'_, '_>>,
    piece_length: u32,
    v1: &[FileEntry],
) -> Result<V2Info, MetainfoError> {
    let tree = read_tree(info, piece_length)?;
    let (aligned, aligned_roots) = tree::aligned(&tree.files, piece_length)?;
    let roots = match_files(v1, &aligned, &aligned_roots, piece_length)?;
    V2Info::new(v1, roots, layers, piece_length)
}

/// Pairs the files that hold data (or are links) in `v1` and in the tree's aligned stream: same
/// count, paths, lengths and offsets; pad and empty files may differ; the v1 stream may end with
/// padding up to the next piece boundary. Returns the roots per entry of `v1`.
fn match_files(
    v1: &[FileEntry],
    aligned: &[FileEntry],
    aligned_roots: &[Option<Hash>],
    piece_length: u32,
) -> Result<Vec<Option<Hash>>, MetainfoError> {
    let relevant = |f: &&FileEntry| !f.attr.pad && (f.length > 0 || f.attr.symlink);
    let ours: Vec<(usize, &FileEntry)> =
        v1.iter().enumerate().filter(|(_, f)| relevant(f)).collect();
    let theirs: Vec<(usize, &FileEntry)> = aligned
        .iter()
        .enumerate()
        .filter(|(_, f)| relevant(f))
        .collect();
    if ours.len() != theirs.len() {
        return Err(MetainfoError::Inconsistent(format!(
            "the v1 list has {} files with data, the file tree {}",
            ours.len(),
            theirs.len()
        )));
    }
    let mut roots = vec![None; v1.len()];
    for (&(i, a), &(j, b)) in ours.iter().zip(&theirs) {
        let what = if a.path != b.path {
            Some("path")
        } else if a.length != b.length {
            Some("length")
        } else if a.offset != b.offset {
            Some("offset (piece alignment)")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(MetainfoError::Inconsistent(format!(
                "v1 file {i} (`{}`) and the file tree's `{}` differ in {what}",
                a.display_path(),
                b.display_path()
            )));
        }
        roots[i] = aligned_roots[j];
    }
    let end = |files: &[FileEntry]| files.last().map_or(0, |f| f.offset + f.length);
    let (v1_end, v2_end) = (end(v1), end(aligned));
    let boundary = v2_end.div_ceil(u64::from(piece_length)) * u64::from(piece_length);
    if v1_end < v2_end || v1_end > boundary {
        return Err(MetainfoError::Inconsistent(format!(
            "the v1 stream is {v1_end} bytes, the file tree's {v2_end}"
        )));
    }
    Ok(roots)
}

impl V2Info {
    /// The v2 side of `files` (piece-aligned), their `roots`, and the `piece layers` node.
    fn new(
        files: &[FileEntry],
        roots: Vec<Option<Hash>>,
        layers: Option<Node<'_, '_>>,
        piece_length: u32,
    ) -> Result<V2Info, MetainfoError> {
        let piece = u64::from(piece_length);
        let mut starts = Vec::new();
        for (i, f) in files.iter().enumerate() {
            if roots[i].is_some() {
                let first =
                    u32::try_from(f.offset / piece).map_err(|_| MetainfoError::TooManyPieces)?;
                starts.push((first, i));
            }
        }
        let layers_known = layers.is_some();
        let layers = match layers {
            Some(node) => piece_layers(node, files, &roots, piece_length)?,
            None => vec![None; files.len()],
        };
        Ok(V2Info {
            roots,
            layers,
            layers_known,
            starts,
        })
    }
}

/// Reads the top-level `piece layers`: every file larger than one piece needs the entry under its
/// root, of ceil(length / piece length) hashes that hash up to that root. Entries of the wrong
/// shape are skipped, as libtorrent does; a file that needs one then finds it missing.
fn piece_layers(
    node: Node<'_, '_>,
    files: &[FileEntry],
    roots: &[Option<Hash>],
    piece_length: u32,
) -> Result<Vec<Option<Vec<Hash>>>, MetainfoError> {
    let dict = node
        .as_dict()
        .ok_or_else(|| wrong_type("piece layers", "a dictionary", node))?;
    let by_root: HashMap<Hash, &[u8]> = dict
        .into_iter()
        .filter_map(|(k, v)| {
            let root = Hash::try_from(k).ok()?;
            let bytes = v.as_bytes()?;
            (bytes.len() % 32 == 0).then_some((root, bytes))
        })
        .collect();
    let mut layers = vec![None; files.len()];
    for (i, f) in files.iter().enumerate() {
        let Some(root) = roots[i] else { continue };
        if f.length <= u64::from(piece_length) {
            continue;
        }
        let bad = |why| MetainfoError::PieceLayer {
            file: f.display_path(),
            why,
        };
        let bytes = by_root.get(&root).ok_or_else(|| bad("is missing"))?;
        if bytes.len() as u64 != f.length.div_ceil(u64::from(piece_length)) * 32 {
            return Err(bad("does not have one hash per piece"));
        }
        let hashes: Vec<Hash> = bytes
            .chunks_exact(32)
            .filter_map(|c| Hash::try_from(c).ok())
            .collect();
        if merkle::root_from_piece_layer(&hashes, piece_length) != Some(root) {
            return Err(bad("does not hash up to the file's `pieces root`"));
        }
        layers[i] = Some(hashes);
    }
    Ok(layers)
}

impl Info {
    /// The formats this torrent can be downloaded as. A hybrid whose v2 part is broken or does not
    /// match its v1 part counts as v1 (BEP 52 allows falling back; [`Info::v2_set_aside`] says why).
    pub fn version(&self) -> MetaVersion {
        match (&self.v2, self.piece_hashes.is_empty()) {
            (None, _) => MetaVersion::V1,
            (Some(_), true) => MetaVersion::V2,
            (Some(_), false) => MetaVersion::Hybrid,
        }
    }

    /// Why a torrent declaring `meta version` 2 beside v1 `pieces` is used as v1 only.
    pub fn v2_set_aside(&self) -> Option<&MetainfoError> {
        self.v2_set_aside.as_ref()
    }

    /// File `index`'s `pieces root` (v2 and hybrid torrents; none for pad and empty files).
    pub fn pieces_root(&self, index: usize) -> Option<Hash> {
        self.v2.as_ref()?.roots.get(index).copied().flatten()
    }

    /// File `index`'s piece layer (one hash per piece), for a file larger than one piece when the
    /// torrent carried `piece layers`.
    pub fn piece_layer(&self, index: usize) -> Option<&[Hash]> {
        self.v2.as_ref()?.layers.get(index)?.as_deref()
    }

    /// Whether the torrent carried `piece layers`. Metadata from a magnet link does not (BEP 9
    /// sends `info` only): peers then send the layers in `hashes` messages.
    pub fn has_piece_layers(&self) -> bool {
        self.v2.as_ref().is_some_and(|v| v.layers_known)
    }

    /// Where v2 piece `index` lies: in one file, at most a piece long. `None` past the end or
    /// without a v2 side. In a hybrid, v2 piece `i` covers the same bytes as v1 piece `i`.
    pub fn v2_piece(&self, index: u32) -> Option<V2Piece> {
        let v2 = self.v2.as_ref()?;
        let at = v2.starts.partition_point(|&(first, _)| first <= index);
        let (first, file) = *v2.starts.get(at.checked_sub(1)?)?;
        let f = &self.files[file];
        let piece = u64::from(self.lengths.piece_length());
        let index_in_file = index - first;
        let offset = u64::from(index_in_file) * piece;
        if offset >= f.length {
            return None;
        }
        Some(V2Piece {
            file,
            index_in_file,
            offset,
            len: (f.length - offset).min(piece) as u32,
            height: merkle::piece_root_height(f.length, self.lengths.piece_length())?,
        })
    }

    /// Every v2 piece in order (empty without a v2 side).
    pub fn v2_pieces(&self) -> impl Iterator<Item = V2Piece> + '_ {
        let count = if self.v2.is_some() {
            self.lengths.piece_count()
        } else {
            0
        };
        (0..count).filter_map(|i| self.v2_piece(i))
    }

    /// The hash v2 piece `index` must have: its piece-layer entry, or the root of a file of at most
    /// one piece. `None` when unknown (no `piece layers` yet) or out of range.
    pub fn v2_piece_hash(&self, index: u32) -> Option<Hash> {
        let p = self.v2_piece(index)?;
        if self.files[p.file].length > u64::from(self.lengths.piece_length()) {
            self.piece_layer(p.file)?
                .get(p.index_in_file as usize)
                .copied()
        } else {
            self.pieces_root(p.file)
        }
    }
}

#[cfg(test)]
mod tests;
