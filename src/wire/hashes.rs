//! BEP 52 hash messages: `hash request` (id 21), `hashes` (22) and `hash reject` (23). The header
//! they share (pieces root, base layer, index, length, proof layers), the shape rules a peer's must
//! follow, and their encoding; [`super::Codec`] decodes them once [`super::Codec::with_v2`] asks.

use bytes::{Buf, BufMut, BytesMut};

use super::{Message, WireError};
use crate::merkle::{self, Hash, MerkleTree};

/// `hash request` message id.
pub const HASH_REQUEST: u8 = 21;
/// `hashes` message id.
pub const HASHES: u8 = 22;
/// `hash reject` message id.
pub const HASH_REJECT: u8 = 23;

/// Most base hashes we ask for in one request, and so the most a `hashes` reply may carry (BEP 52:
/// length SHOULD NOT exceed 512; libtorrent asks for the piece layer 512 at a time).
pub const MAX_HASHES: u32 = 512;
/// Most base hashes a peer's `hash request` may name: libtorrent's own bound (8192 leaves, a 128 MiB
/// piece), since it asks for a whole piece's leaves after a failed piece. Requests above
/// [`MAX_HASHES`] are decoded so that they can be answered with a `hash reject`.
pub const MAX_REQUEST_HASHES: u32 = 8192;
/// Highest base layer and most proof layers: no tree is taller ([`merkle::MAX_HEIGHT`]).
pub const MAX_LAYERS: u32 = merkle::MAX_HEIGHT;
/// Bytes of the shared header: a 32-byte root and four 4-byte integers.
pub const HEADER_LEN: usize = 32 + 4 * 4;
/// Longest `hashes` frame (id byte included): [`MAX_HASHES`] base hashes and the most uncles
/// [`MAX_LAYERS`] proof layers add to them.
pub const MAX_FRAME: u32 = {
    let uncles = MAX_LAYERS + 1 - MAX_HASHES.trailing_zeros();
    1 + HEADER_LEN as u32 + 32 * (MAX_HASHES + uncles)
};

/// The header of the three messages: which hashes of which file's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashRequest {
    /// The file's `pieces root`.
    pub pieces_root: Hash,
    /// Layer of the first hashes, counted up from the leaves (0), usually 0 or the piece layer.
    pub base_layer: u32,
    /// Offset of the first hash in that layer: a multiple of `length`.
    pub index: u32,
    /// Number of base hashes: a power of two.
    pub length: u32,
    /// Ancestor layers whose uncle hashes are wanted too.
    pub proof_layers: u32,
}

impl HashRequest {
    /// How many uncle hashes its `hashes` reply carries ([`merkle::uncle_count`]).
    pub fn uncles(&self) -> u32 {
        merkle::uncle_count(self.length, self.proof_layers)
    }

    /// BEP 52's shape rules, as a peer's message must follow them: `length` a power of two (1 is
    /// accepted: libtorrent asks for one leaf per piece when pieces are 16 KiB) and at most
    /// `max_length`, `index` a multiple of it, layers within any tree.
    pub fn check(&self, max_length: u32) -> Result<(), &'static str> {
        if !self.length.is_power_of_two() {
            Err("length is not a power of two")
        } else if self.length > max_length {
            Err("length is over the limit")
        } else if self.index % self.length != 0 {
            Err("index is not a multiple of length")
        } else if self.base_layer > MAX_LAYERS || self.proof_layers > MAX_LAYERS {
            Err("layer beyond any tree")
        } else {
            Ok(())
        }
    }

    fn put(&self, out: &mut BytesMut) {
        out.put_slice(&self.pieces_root);
        out.put_u32(self.base_layer);
        out.put_u32(self.index);
        out.put_u32(self.length);
        out.put_u32(self.proof_layers);
    }

    /// Reads the header off the front of `frame` (at least [`HEADER_LEN`] bytes).
    fn take(frame: &mut BytesMut) -> HashRequest {
        let mut pieces_root = [0u8; 32];
        frame.copy_to_slice(&mut pieces_root);
        HashRequest {
            pieces_root,
            base_layer: frame.get_u32(),
            index: frame.get_u32(),
            length: frame.get_u32(),
            proof_layers: frame.get_u32(),
        }
    }
}

/// A `hashes` reply: the request it answers, then `length` base hashes and the uncles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashes {
    /// The request answered (same header).
    pub request: HashRequest,
    /// Base hashes, then uncle hashes lowest first: `length + uncles()` in all.
    pub hashes: Vec<Hash>,
}

impl Hashes {
    /// The requested hashes.
    pub fn base(&self) -> &[Hash] {
        let n = (self.request.length as usize).min(self.hashes.len());
        &self.hashes[..n]
    }

    /// The uncle hashes, lowest first.
    pub fn uncles(&self) -> &[Hash] {
        let n = (self.request.length as usize).min(self.hashes.len());
        &self.hashes[n..]
    }

    /// The node this reply proves ([`merkle::proven_node`]): (height, index, hash), for the caller to
    /// compare with a node it trusts.
    pub fn proven_node(&self) -> Option<(u32, u64, Hash)> {
        let r = &self.request;
        merkle::proven_node(r.base_layer, u64::from(r.index), self.base(), self.uncles())
    }
}

/// Our answer to a peer's `hash request`, given the tree we hold of the file it names (`None`: no
/// file of ours has that `pieces root`, or we do not know its layers yet): a `hashes` reply, or a
/// `hash reject` of the same fields for anything we cannot serve. Served: at most [`MAX_HASHES`]
/// base hashes (BEP 52: length SHOULD NOT exceed 512), from a layer the tree holds (the piece
/// layer and above; never the leaves, which we do not keep), inside the file's padded layer, with
/// uncles that stop below the root (libtorrent's rule: proof layers < layers above the base).
pub fn answer(request: &HashRequest, tree: Option<&MerkleTree>) -> Message {
    let r = request;
    let served = tree
        .filter(|t| t.root() == r.pieces_root && r.check(MAX_HASHES).is_ok())
        .and_then(|t| t.hashes(r.base_layer, u64::from(r.index), r.length, r.proof_layers));
    match served {
        Some(hashes) => Message::Hashes(Hashes {
            request: *r,
            hashes,
        }),
        None => Message::HashReject(*r),
    }
}

/// The requests that fetch the piece layer of a file of `file_len` bytes whose `pieces root` is
/// `root`: none for a file of at most one piece (its root is its only piece hash) or an invalid
/// piece length; else the layer padded to a power of two, [`MAX_HASHES`] at a time, each with the
/// proof layers that climb from its hashes to just below the root (so that the reply proves the
/// root: [`layer_chunk`]).
pub fn layer_requests(root: Hash, file_len: u64, piece_length: u32) -> Vec<HashRequest> {
    let Some(base_layer) = merkle::piece_height(piece_length) else {
        return Vec::new();
    };
    if file_len <= u64::from(piece_length) {
        return Vec::new();
    }
    let pieces = file_len.div_ceil(u64::from(piece_length));
    let levels = merkle::height_for(pieces);
    let Ok(padded) = u32::try_from(1u64 << levels) else {
        return Vec::new();
    };
    let length = padded.min(MAX_HASHES);
    (0..padded / length)
        .map(|k| HashRequest {
            pieces_root: root,
            base_layer,
            index: k * length,
            length,
            proof_layers: levels - 1,
        })
        .collect()
}

/// The piece-layer hashes a `hashes` reply to one of [`layer_requests`] carries, once checked: it
/// must answer `request` exactly and prove the file's root (`pieces root`, at the height the
/// request implies); `None` when it does not (the peer lied or answered something else). Returns
/// every base hash, padding included: the caller keeps the first ones, up to the file's pieces.
pub fn layer_chunk<'a>(request: &HashRequest, reply: &'a Hashes) -> Option<&'a [Hash]> {
    if reply.request != *request {
        return None;
    }
    let r = request;
    let root_height = r.base_layer + merkle::height_for(u64::from(r.length)) + r.uncles();
    let proven = reply.proven_node()?;
    (proven == (root_height, 0, r.pieces_root)).then(|| reply.base())
}

/// Appends a framed `hash request` or `hash reject` (`id`).
pub(super) fn encode_request(out: &mut BytesMut, id: u8, r: &HashRequest) {
    out.put_u32(1 + HEADER_LEN as u32);
    out.put_u8(id);
    r.put(out);
}

/// Appends a framed `hashes` message.
pub(super) fn encode_hashes(out: &mut BytesMut, h: &Hashes) {
    out.put_u32(1 + (HEADER_LEN + 32 * h.hashes.len()) as u32);
    out.put_u8(HASHES);
    h.request.put(out);
    for hash in &h.hashes {
        out.put_slice(hash);
    }
}

/// Decodes a hash message (`id` 21 to 23) of frame length `len`, its id byte taken off `frame`.
pub(super) fn decode(id: u8, len: u32, mut frame: BytesMut) -> Result<Message, WireError> {
    let bad_length = WireError::BadLength { id, len };
    if frame.len() < HEADER_LEN || (id != HASHES && frame.len() != HEADER_LEN) {
        return Err(bad_length);
    }
    let request = HashRequest::take(&mut frame);
    let max = if id == HASHES {
        MAX_HASHES
    } else {
        MAX_REQUEST_HASHES
    };
    request
        .check(max)
        .map_err(|why| WireError::BadHashMessage { id, why })?;
    Ok(match id {
        HASH_REQUEST => Message::HashRequest(request),
        HASH_REJECT => Message::HashReject(request),
        _ => {
            let count = request.length as usize + request.uncles() as usize;
            if frame.len() != 32 * count {
                return Err(bad_length);
            }
            let hashes = frame
                .chunks_exact(32)
                .filter_map(|c| Hash::try_from(c).ok())
                .collect();
            Message::Hashes(Hashes { request, hashes })
        }
    })
}

#[cfg(test)]
mod tests;
