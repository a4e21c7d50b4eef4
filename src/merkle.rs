//! BEP 52 Merkle trees over SHA-256: 16 KiB block leaves padded with zero hashes to a power of two, a
//! file's `pieces root`, its piece layer, and the proofs (uncle hashes) that tie hashes to a node one
//! already trusts. Pure: bytes and hashes in, hashes out.
//!
//! Heights count layers above the leaves: the leaves are height 0, a file's root is height
//! [`height_for`]`(blocks)`, and the piece layer is height [`piece_height`]`(piece length)`.

use sha2::{Digest, Sha256};

use crate::types::BLOCK_LEN;

/// A SHA-256 digest: one node of a tree.
pub type Hash = [u8; 32];

/// The leaf of a block past the end of a file: 32 zero bytes (BEP 52).
pub const ZERO: Hash = [0; 32];

/// Highest tree accepted: a file of 2^64 bytes has 2^50 blocks, so no real tree is taller, and
/// heights and shifts stay far from overflow.
pub const MAX_HEIGHT: u32 = 50;

/// SHA-256 of one block (the last block of a file may be shorter than 16 KiB).
pub fn hash_block(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// A parent node: SHA-256 of its two children.
pub fn hash_pair(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of a subtree of `height` layers that covers no data: [`ZERO`] at height 0, and each layer
/// up the hash of two of the layer below.
pub fn pad_hash(height: u32) -> Hash {
    (0..height.min(MAX_HEIGHT)).fold(ZERO, |h, _| hash_pair(&h, &h))
}

/// Blocks (leaves holding data) in a file of `len` bytes.
pub fn block_count(len: u64) -> u64 {
    len.div_ceil(u64::from(BLOCK_LEN))
}

/// Layers above `count` nodes once padded to a power of two: ceil(log2(count)), 0 for 0 or 1.
pub fn height_for(count: u64) -> u32 {
    if count <= 1 {
        0
    } else {
        64 - (count - 1).leading_zeros()
    }
}

/// Height of the piece layer (one node covers `piece_length` bytes); `None` unless the piece length
/// is a power of two of at least 16 KiB, as BEP 52 requires.
pub fn piece_height(piece_length: u32) -> Option<u32> {
    (piece_length >= BLOCK_LEN && piece_length.is_power_of_two())
        .then(|| (piece_length / BLOCK_LEN).trailing_zeros())
}

/// Height of the node a piece of a file of `file_len` bytes is checked against: the piece layer for
/// a file larger than one piece, else the file's root (a tree over its own blocks only).
pub fn piece_root_height(file_len: u64, piece_length: u32) -> Option<u32> {
    let piece = piece_height(piece_length)?;
    Some(if file_len > u64::from(piece_length) {
        piece
    } else {
        height_for(block_count(file_len))
    })
}

/// The root of the subtree `levels` layers above `layer`, a run of nodes at height `height` that
/// starts at the subtree's first node; nodes past its end are padding. `None` when `layer` holds
/// more than the subtree's 2^`levels` nodes or the tree would exceed [`MAX_HEIGHT`].
pub fn subtree_root(layer: &[Hash], height: u32, levels: u32) -> Option<Hash> {
    if height.checked_add(levels)? > MAX_HEIGHT || layer.len() as u64 > 1u64 << levels {
        return None;
    }
    if layer.is_empty() {
        return Some(pad_hash(height + levels));
    }
    let mut pad = pad_hash(height);
    let mut nodes = layer.to_vec();
    for _ in 0..levels {
        let parents = nodes.len().div_ceil(2);
        for i in 0..parents {
            let right = nodes.get(2 * i + 1).copied().unwrap_or(pad);
            nodes[i] = hash_pair(&nodes[2 * i], &right);
        }
        nodes.truncate(parents);
        pad = hash_pair(&pad, &pad);
    }
    nodes.first().copied()
}

/// The leaves of `data`: one hash per 16 KiB block.
pub fn leaf_hashes(data: &[u8]) -> Vec<Hash> {
    data.chunks(BLOCK_LEN as usize).map(hash_block).collect()
}

/// A file's `pieces root`; `None` for an empty file, which has none.
pub fn file_root(data: &[u8]) -> Option<Hash> {
    if data.is_empty() {
        return None;
    }
    let leaves = leaf_hashes(data);
    subtree_root(&leaves, 0, height_for(leaves.len() as u64))
}

/// The hash a piece's data must have: the root over its blocks, padded to `2^height` leaves
/// (`height` from [`piece_root_height`]). `None` when the data does not fit that many leaves.
pub fn piece_root(data: &[u8], height: u32) -> Option<Hash> {
    subtree_root(&leaf_hashes(data), 0, height)
}

/// A file's piece layer as a `.torrent` stores it: one hash per piece, none for padding. Empty for a
/// file of at most one piece (BEP 52 gives those no entry); `None` for an invalid piece length.
pub fn piece_layer(data: &[u8], piece_length: u32) -> Option<Vec<Hash>> {
    let height = piece_height(piece_length)?;
    if data.len() as u64 <= u64::from(piece_length) {
        return Some(Vec::new());
    }
    data.chunks(piece_length as usize)
        .map(|piece| piece_root(piece, height))
        .collect()
}

/// The root a piece layer hashes up to, the layer padded with [`pad_hash`] of the piece height.
pub fn root_from_piece_layer(layer: &[Hash], piece_length: u32) -> Option<Hash> {
    let height = piece_height(piece_length)?;
    subtree_root(layer, height, height_for(layer.len() as u64))
}

/// Climbs from `node`, the `index`th of its layer, with one sibling per layer (`proof`, lowest
/// first): the ancestor `proof.len()` layers up.
pub fn root_from_proof(node: Hash, index: u64, proof: &[Hash]) -> Hash {
    let mut hash = node;
    let mut index = index;
    for sibling in proof {
        hash = if index & 1 == 0 {
            hash_pair(&hash, sibling)
        } else {
            hash_pair(sibling, &hash)
        };
        index >>= 1;
    }
    hash
}

/// Whether a block whose hash is `block_hash`, the `index`th block of its piece, belongs to the piece
/// whose hash is `piece_hash`, given its siblings up to the piece (`proof`, lowest first).
pub fn verify_block(block_hash: Hash, index: u64, proof: &[Hash], piece_hash: &Hash) -> bool {
    root_from_proof(block_hash, index, proof) == *piece_hash
}

/// How many uncle hashes a `hashes` reply carries for `length` base hashes and `proof_layers`: the
/// first log2(`length`) - 1 proof layers fall inside the requested subtree and are left out
/// (BEP 52), so `proof_layers + 1 - log2(length)`, at least 0.
pub fn uncle_count(length: u32, proof_layers: u32) -> u32 {
    proof_layers
        .saturating_add(1)
        .saturating_sub(height_for(u64::from(length)))
}

/// What a `hashes` reply proves: `base_hashes` (a power of two of them, the first at `index`, a
/// multiple of their count, at height `base`) and `uncles` (lowest first) climb to one node. Returns
/// its (height, index, hash), for the caller to compare with a node it trusts (the root, or a
/// piece-layer hash); `None` for a shape BEP 52 does not allow.
pub fn proven_node(
    base: u32,
    index: u64,
    base_hashes: &[Hash],
    uncles: &[Hash],
) -> Option<(u32, u64, Hash)> {
    let count = base_hashes.len() as u64;
    if !count.is_power_of_two() || index % count != 0 {
        return None;
    }
    let levels = height_for(count);
    let height = base
        .checked_add(levels)?
        .checked_add(u32::try_from(uncles.len()).ok()?)?;
    if height > MAX_HEIGHT {
        return None;
    }
    let subtree = subtree_root(base_hashes, base, levels)?;
    let at = index >> levels;
    let hash = root_from_proof(subtree, at, uncles);
    Some((height, at >> uncles.len(), hash))
}

/// The hashes of a `hashes` reply to a leaf-layer request (BEP 52 base layer 0), served from one
/// piece's data: `leaves` are that piece's block hashes (padding left out), `piece_height` the
/// height of its node (`2^piece_height` leaves under it), `piece_in_file` its index among the
/// file's pieces, and `expected` the hash we trust for it (its piece-layer entry, or the `pieces
/// root` of a file of one piece). Uncles above the piece come from `upper`, the file's tree from
/// the piece layer up; without it (a file of one piece) they must stop below the root. `None` when
/// the request lies outside this piece, the leaves do not hash to `expected` (the data on disk is
/// not the piece), or the shape is one BEP 52 forbids.
pub fn leaf_reply(
    leaves: &[Hash],
    piece_height: u32,
    piece_in_file: u64,
    expected: &Hash,
    upper: Option<&MerkleTree>,
    request: (u64, u32, u32),
) -> Option<Vec<Hash>> {
    let (index, length, proof_layers) = request;
    if piece_height > MAX_HEIGHT.min(20) || length == 0 || !length.is_power_of_two() {
        return None;
    }
    let per_piece = 1u64 << piece_height;
    let local = index.checked_sub(piece_in_file.checked_mul(per_piece)?)?;
    if index % u64::from(length) != 0
        || local + u64::from(length) > per_piece
        || leaves.len() as u64 > per_piece
    {
        return None;
    }
    let mut padded = leaves.to_vec();
    padded.resize(per_piece as usize, ZERO);
    let piece = MerkleTree::from_layer(padded, 0)?;
    if piece.root() != *expected {
        return None;
    }
    let mut out = (local..local + u64::from(length))
        .map(|i| piece.node(0, i))
        .collect::<Option<Vec<_>>>()?;
    let first = height_for(u64::from(length));
    for height in (first..).take(uncle_count(length, proof_layers) as usize) {
        let uncle = if height < piece_height {
            piece.node(height, (local >> height) ^ 1)?
        } else {
            let upper = upper.filter(|u| height < u.height() && height >= u.base())?;
            upper.node(height, (index >> height) ^ 1)?
        };
        out.push(uncle);
    }
    Some(out)
}

/// The known layers of one file's tree, from `base` (0: the leaves; the piece height when built
/// from a `.torrent`'s piece layer) up to the root. Nodes past the end of the data are padding:
/// computed, never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    base: u32,
    /// `layers[k]` is height `base + k`; the last holds the root alone.
    layers: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// The tree over a file's leaves; `None` for no leaf (an empty file has no tree).
    pub fn from_leaves(leaves: Vec<Hash>) -> Option<MerkleTree> {
        MerkleTree::from_layer(leaves, 0)
    }

    /// The tree above `layer`, a whole layer at height `height` (padding left out); `None` when empty
    /// or taller than [`MAX_HEIGHT`].
    pub fn from_layer(layer: Vec<Hash>, height: u32) -> Option<MerkleTree> {
        let levels = height_for(layer.len() as u64);
        if layer.is_empty() || height.checked_add(levels)? > MAX_HEIGHT {
            return None;
        }
        let mut layers = vec![layer];
        let mut pad = pad_hash(height);
        while let Some(top) = layers.last().filter(|l| l.len() > 1) {
            let next = top
                .chunks(2)
                .map(|pair| hash_pair(&pair[0], pair.get(1).unwrap_or(&pad)))
                .collect();
            layers.push(next);
            pad = hash_pair(&pad, &pad);
        }
        Some(MerkleTree {
            base: height,
            layers,
        })
    }

    /// The root: a file's `pieces root`.
    pub fn root(&self) -> Hash {
        self.layers
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(ZERO)
    }

    /// The root's height.
    pub fn height(&self) -> u32 {
        self.base + self.layers.len() as u32 - 1
    }

    /// The lowest layer held.
    pub fn base(&self) -> u32 {
        self.base
    }

    /// The nodes of the layer at `height` that cover data (padding left out).
    pub fn layer(&self, height: u32) -> Option<&[Hash]> {
        let k = height.checked_sub(self.base)?;
        self.layers.get(k as usize).map(Vec::as_slice)
    }

    /// Node `index` at `height`: stored, or padding when it lies past the data but inside the tree.
    pub fn node(&self, height: u32, index: u64) -> Option<Hash> {
        let layer = self.layer(height)?;
        if index >> (self.height() - height) != 0 {
            return None;
        }
        Some(
            match usize::try_from(index).ok().and_then(|i| layer.get(i)) {
                Some(h) => *h,
                None => pad_hash(height),
            },
        )
    }

    /// The hashes a `hashes` reply carries for this request: `length` nodes from `index` at height
    /// `base` (padding included), then the uncles, lowest first ([`uncle_count`]). `None` when this
    /// tree cannot serve it (below the layers held, past the tree, or a shape BEP 52 forbids).
    pub fn hashes(
        &self,
        base: u32,
        index: u64,
        length: u32,
        proof_layers: u32,
    ) -> Option<Vec<Hash>> {
        if length == 0 || !length.is_power_of_two() || index % u64::from(length) != 0 {
            return None;
        }
        let end = index.checked_add(u64::from(length))?;
        let mut out = (index..end)
            .map(|i| self.node(base, i))
            .collect::<Option<Vec<_>>>()?;
        let levels = height_for(u64::from(length));
        let mut at = index >> levels;
        let first = base.checked_add(levels)?;
        for height in (first..).take(uncle_count(length, proof_layers) as usize) {
            if height >= self.height() {
                return None;
            }
            out.push(self.node(height, at ^ 1)?);
            at >>= 1;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests;
