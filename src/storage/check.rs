//! How a piece's bytes are judged, by the torrent's format: SHA-1 against `pieces` (v1); the BEP 52
//! Merkle root of the piece's own file bytes against its piece-layer entry (v2); both for a hybrid.
//! Pure: bytes in, a verdict out.

use sha1::{Digest, Sha1};

use crate::merkle::{self, Hash};
use crate::metainfo::{Info, MetaVersion};

/// Why a torrent's pieces cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// A v2-only `.torrent` without the piece layer of a file larger than a piece (a magnet link's
    /// metadata carries none either, but `session::hashes::layers` fetches them before the check).
    #[error(
        "v2 piece {piece} (in `{file}`) has no known hash: the torrent carries no `piece layers` for \
         it (they are fetched from peers for a magnet link only; use the torrent's magnet link)"
    )]
    NoPieceHash { piece: u32, file: String },
    /// A v2-only torrent whose piece lies in no file (never from a torrent that parsed).
    #[error("v2 piece {0} lies in no file")]
    NoFile(u32),
}

/// What a v2 piece must hash to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct V2Expect {
    /// The piece-layer entry, or the `pieces root` of a file of at most one piece.
    hash: Hash,
    /// Bytes of the piece that belong to its file; the rest of the layout's piece is padding.
    len: u32,
    /// Height of the node `hash` is (see [`crate::metainfo::V2Piece::height`]).
    height: u32,
    /// The file's `pieces root`, naming its tree in a BEP 52 `hash request`.
    root: Hash,
    /// The piece's index among its file's pieces.
    index_in_file: u32,
}

/// What a v2 piece's blocks can be checked against once their leaf hashes are known: enough to ask
/// a peer for them (`root`, `first_leaf`, `leaves`) and to trust its answer (`hash`, `height`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2Blocks {
    /// The file's `pieces root`.
    pub root: Hash,
    /// The piece's hash (its piece-layer entry, or the root of a file of at most one piece).
    pub hash: Hash,
    /// Height of `hash` above the leaves: the piece spans `1 << height` leaves, padding included.
    pub height: u32,
    /// Index in the file's leaf layer of the piece's first block.
    pub first_leaf: u64,
    /// Bytes of the piece that belong to its file.
    pub len: u32,
}

/// The expected hashes of every piece of one torrent, as its format says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceCheck {
    /// SHA-1 per piece, over the layout's whole piece (pad bytes included); empty for v2-only.
    v1: Vec<[u8; 20]>,
    /// Per piece, its v2 expectation; empty for v1. `None` in a hybrid whose piece layers are not
    /// known (a magnet's metadata): the v1 hash alone then decides.
    v2: Vec<Option<V2Expect>>,
}

impl PieceCheck {
    /// SHA-1 only, one hash per piece.
    pub fn v1(hashes: Vec<[u8; 20]>) -> PieceCheck {
        PieceCheck {
            v1: hashes,
            v2: Vec::new(),
        }
    }

    /// The check `info`'s format calls for. A v2-only torrent must know every piece's hash.
    pub fn for_info(info: &Info) -> Result<PieceCheck, CheckError> {
        let version = info.version();
        let v1 = match version {
            MetaVersion::V2 => Vec::new(),
            _ => info.piece_hashes.clone(),
        };
        if version == MetaVersion::V1 {
            return Ok(PieceCheck::v1(v1));
        }
        let mut v2 = Vec::with_capacity(info.lengths.piece_count() as usize);
        for i in 0..info.lengths.piece_count() {
            let expect = info.v2_piece(i).and_then(|p| {
                Some(V2Expect {
                    hash: info.v2_piece_hash(i)?,
                    len: p.len,
                    height: p.height,
                    root: info.pieces_root(p.file)?,
                    index_in_file: p.index_in_file,
                })
            });
            if expect.is_none() && version == MetaVersion::V2 {
                return Err(match info.v2_piece(i) {
                    Some(p) => CheckError::NoPieceHash {
                        piece: i,
                        file: info.files[p.file].display_path(),
                    },
                    None => CheckError::NoFile(i),
                });
            }
            v2.push(expect);
        }
        Ok(PieceCheck { v1, v2 })
    }

    /// The check of a v2-only torrent of one file of `layer.len()` full pieces (tests).
    #[cfg(test)]
    pub(crate) fn v2_one_file(root: Hash, layer: &[Hash], piece_length: u32) -> PieceCheck {
        let height = merkle::piece_height(piece_length).unwrap_or(0);
        let v2 = (0..layer.len())
            .map(|i| {
                Some(V2Expect {
                    hash: layer[i],
                    len: piece_length,
                    height,
                    root,
                    index_in_file: i as u32,
                })
            })
            .collect();
        PieceCheck { v1: Vec::new(), v2 }
    }

    /// What piece `piece`'s blocks are checked against, for a v2 or hybrid piece whose hash is
    /// known; `None` for v1.
    pub fn v2_blocks(&self, piece: u32) -> Option<V2Blocks> {
        let e = (*self.v2.get(piece as usize)?)?;
        Some(V2Blocks {
            root: e.root,
            hash: e.hash,
            height: e.height,
            first_leaf: u64::from(e.index_in_file) << e.height,
            len: e.len,
        })
    }

    /// Whether `data`, the layout's piece `piece` (a v2 file's last piece followed by its pad
    /// bytes), is right: its SHA-1 (v1, hybrid) and the Merkle root of its file's bytes (v2,
    /// hybrid) both match. The pad bytes of a v2-only torrent are not judged: they are never
    /// stored. A piece out of range never matches.
    pub fn matches(&self, piece: u32, data: &[u8]) -> bool {
        let i = piece as usize;
        if !self.v1.is_empty() {
            match self.v1.get(i) {
                Some(want) if Sha1::digest(data).as_slice() == want => {}
                _ => return false,
            }
        }
        if self.v2.is_empty() {
            return !self.v1.is_empty();
        }
        match self.v2.get(i) {
            Some(Some(e)) => data.get(..e.len as usize).is_some_and(|own| {
                merkle::piece_root(own, e.height).is_some_and(|root| root == e.hash)
            }),
            // A hybrid piece with no known v2 hash: its SHA-1 matched above.
            Some(None) => !self.v1.is_empty(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
