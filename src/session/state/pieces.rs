//! Pieces: the picker (piece states, availability, block reservations), the buffers of pieces being
//! assembled (and a few spare ones, back from the hash check, for the next pieces: a fresh buffer
//! costs zeroing and a page fault per 4 KiB), and the randomness the picker and the choker draw on.
//!
//! Piece states, as the picker keeps them: *missing* → *active* (blocks reserved and arriving, its
//! buffer here) → *complete* (every block in, handed to the hash check, buffer gone) → *verified*
//! (on disk; never leaves) or back to *missing* (the check failed; retried from one source only).

use std::collections::HashMap;

use rand::rngs::StdRng;

use super::Source;
use crate::bitfield::Bitfield;
use crate::picker::{PeerKey, Picker, Receipt};
use crate::types::{BlockRef, PieceIndex, BLOCK_LEN};

/// A piece being assembled in memory.
struct PieceBuf {
    data: Vec<u8>,
    /// Sources that delivered at least one block of it, with their bytes.
    contributors: Vec<(Source, u64)>,
    /// Per 16 KiB block, who sent it (the last sender, if sent twice).
    senders: Vec<Option<Source>>,
}

/// A complete piece ready to be hashed.
pub struct Complete {
    /// The piece.
    pub piece: PieceIndex,
    /// Its bytes.
    pub data: Vec<u8>,
    /// Who delivered them and how many bytes each: credited if the hash matches, blamed if not.
    pub contributors: Vec<(Source, u64)>,
    /// Per 16 KiB block, who sent it: a v2 piece's bad blocks are blamed on their senders alone.
    pub senders: Vec<Option<Source>>,
}

/// What a received block did.
pub(super) enum Received {
    /// Not wanted (already had, not reserved): wasted.
    Useless,
    /// Stored; `cancel`: peers that had the same block reserved (endgame).
    Stored {
        cancel: Vec<PeerKey>,
        complete: Option<Complete>,
    },
}

/// Bytes of spare piece buffers kept for reuse (at least one buffer is kept).
const SPARE_BYTES: usize = 8 * 1024 * 1024;

pub(super) struct Pieces {
    picker: Picker,
    buffers: HashMap<u32, PieceBuf>,
    /// Buffers of checked pieces, for the next ones; at most [`SPARE_BYTES`] (or one buffer).
    spare: Vec<Vec<u8>>,
    rng: StdRng,
}

impl Pieces {
    pub(super) fn new(picker: Picker, rng: StdRng) -> Pieces {
        Pieces {
            picker,
            buffers: HashMap::new(),
            spare: Vec::new(),
            rng,
        }
    }

    pub(super) fn picker(&self) -> &Picker {
        &self.picker
    }

    pub(super) fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    pub(super) fn pick(&mut self, key: PeerKey, has: &Bitfield, want: usize) -> Vec<BlockRef> {
        self.picker.pick(key, has, want, &mut self.rng)
    }

    pub(super) fn pick_run(&mut self, key: PeerKey, has: &Bitfield, max: usize) -> Vec<BlockRef> {
        self.picker.pick_run(key, has, max, &mut self.rng)
    }

    pub(super) fn unrequest(&mut self, key: PeerKey, blocks: &[BlockRef]) {
        for b in blocks {
            self.picker.unrequest(key, *b);
        }
    }

    pub(super) fn add_have(&mut self, piece: PieceIndex) {
        self.picker.add_have(piece);
    }

    pub(super) fn add_peer(&mut self, has: &Bitfield) {
        self.picker.add_peer(has);
    }

    pub(super) fn remove_peer(&mut self, has: &Bitfield) {
        self.picker.remove_peer(has);
    }

    /// Stores a block from `source` into its piece's buffer.
    pub(super) fn receive(
        &mut self,
        key: PeerKey,
        source: Source,
        block: BlockRef,
        data: &[u8],
        piece_len: u32,
    ) -> Received {
        let (complete, cancel) = match self.picker.received(key, block) {
            Receipt::Useless => return Received::Useless,
            Receipt::Useful { complete, cancel } => (complete, cancel),
        };
        let i = block.piece.get();
        let spare = &mut self.spare;
        let buf = self.buffers.entry(i).or_insert_with(|| PieceBuf {
            data: match spare.pop() {
                // Every byte is overwritten by the piece's blocks before it is hashed.
                Some(mut v) => {
                    v.resize(piece_len as usize, 0);
                    v
                }
                None => vec![0; piece_len as usize],
            },
            contributors: Vec::new(),
            senders: vec![None; piece_len.div_ceil(BLOCK_LEN) as usize],
        });
        let at = block.offset as usize;
        let Some(dst) = buf.data.get_mut(at..at + data.len()) else {
            // The picker hands out blocks of this piece only: cannot happen; refuse, not panic.
            return Received::Useless;
        };
        dst.copy_from_slice(data);
        if let Some(sender) = buf.senders.get_mut((block.offset / BLOCK_LEN) as usize) {
            *sender = Some(source);
        }
        match buf.contributors.iter_mut().find(|(s, _)| *s == source) {
            Some((_, n)) => *n += data.len() as u64,
            None => buf.contributors.push((source, data.len() as u64)),
        }
        let complete = if complete {
            self.buffers.remove(&i).map(|buf| Complete {
                piece: block.piece,
                data: buf.data,
                contributors: buf.contributors,
                senders: buf.senders,
            })
        } else {
            None
        };
        Received::Stored { cancel, complete }
    }

    pub(super) fn verified(&mut self, piece: PieceIndex, ok: bool) {
        self.picker.verified(piece, ok);
    }

    /// Takes back the buffer of a piece that was checked, for a later piece; none are kept once
    /// the download is complete.
    pub(super) fn recycle(&mut self, data: Vec<u8>) {
        let held: usize = self.spare.iter().map(Vec::capacity).sum();
        let room = self.spare.is_empty() || held + data.capacity() <= SPARE_BYTES;
        if room && !self.picker.is_complete() {
            self.spare.push(data);
        } else if self.picker.is_complete() {
            self.spare = Vec::new();
        }
    }

    /// Spare buffers held (tests).
    #[cfg(test)]
    pub(super) fn spare_count(&self) -> usize {
        self.spare.len()
    }

    /// The bytes held in partial piece buffers.
    pub(super) fn buffered(&self) -> usize {
        self.buffers.values().map(|b| b.data.len()).sum()
    }
}
