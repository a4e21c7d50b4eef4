//! Which blocks to ask which peer for: availability from bitfields and `have`s, piece order
//! (rarest-first with random ties and a random start, sequential, random), block reservations per peer,
//! partial pieces finished first, endgame duplicates, and the wanted-pieces mask of a file selection
//! (pieces outside it are never picked, and completion means every wanted piece). Pure and
//! synchronous: no IO, no clock.
//!
//! Scale: the pickable pieces are kept grouped by availability ([`avail`]), so a rarest-first pick
//! looks at the rarest groups, not at every piece; `left` is a running count.

use rand::Rng;

use crate::bitfield::Bitfield;
use crate::types::{BlockRef, Lengths, PieceIndex};
use avail::{ones, Avail};

/// A peer as the picker knows it: an opaque number the session hands out.
pub type PeerKey = u64;

/// Piece order for new pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Rarest in the swarm first, random among equals (the swarm-friendly default).
    Rarest,
    /// Lowest index first (streaming).
    Sequential,
    /// Uniformly random.
    Random,
}

/// Pieces picked at random before rarest-first takes over, so we have something to trade quickly
/// (the first pieces of a rarest-first client are otherwise the slowest to find).
pub const RANDOM_FIRST_PIECES: u32 = 4;
/// Most peers asked for one block at once in endgame: enough to beat one slow peer, without flooding.
pub const MAX_ENDGAME_REQUESTERS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    Free,
    Requested(Vec<PeerKey>),
    Received,
}

#[derive(Debug)]
struct Active {
    blocks: Vec<Block>,
    free: u32,
    received: u32,
    /// Peers holding requests in this piece.
    peers: Vec<PeerKey>,
    /// Set for a piece that failed its hash check: fetched again from one peer only, so the blame for
    /// another failure is exact.
    owner: Option<PeerKey>,
}

#[derive(Debug)]
enum Piece {
    Missing,
    Active(Box<Active>),
    Verifying,
    Have,
    /// Not verified and outside the selection: never picked.
    Unwanted,
}

/// What a received block meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Receipt {
    /// New data: store it. `complete` when it was the piece's last block (hash it now); `cancel` lists
    /// the other peers that were asked for the same block (endgame).
    Useful {
        complete: bool,
        cancel: Vec<PeerKey>,
    },
    /// Already have it, or nothing of this piece is being fetched: drop the bytes.
    Useless,
}

/// The download plan of one torrent.
#[derive(Debug)]
pub struct Picker {
    lengths: Lengths,
    strategy: Strategy,
    pieces: Vec<Piece>,
    have: Bitfield,
    /// Pieces that failed a hash check once.
    failed: Bitfield,
    /// Availability, and the `Piece::Missing` pieces (the pickable ones) grouped by it.
    avail: Avail,
    /// Indices of `Piece::Active`, for scans that must not walk the whole torrent.
    active: Vec<u32>,
    /// Wanted pieces not verified yet: zero means the download (of the selection) is complete.
    wanted_left: u32,
    /// Bytes of wanted pieces not verified yet.
    left_bytes: u64,
    /// Bytes of verified pieces.
    have_bytes: u64,
    /// Bytes in wanted pieces.
    wanted_bytes: u64,
    /// Most pieces in progress at once, partial or complete and waiting for their hash check: bounds
    /// the memory held in piece buffers even when hashing or the disk falls behind.
    max_active: usize,
    /// Count of `Piece::Verifying`.
    verifying: usize,
}

impl Picker {
    /// A plan for `lengths`, with `have` already verified, at most `max_active` partial pieces.
    pub fn new(lengths: Lengths, strategy: Strategy, have: Bitfield, max_active: usize) -> Picker {
        let n = lengths.piece_count();
        let mut avail = Avail::new(n);
        let mut have_bytes = 0;
        let pieces = (0..n)
            .map(|i| {
                if have.get(i) {
                    have_bytes += piece_bytes(lengths, i);
                    Piece::Have
                } else {
                    avail.insert(i);
                    Piece::Missing
                }
            })
            .collect();
        Picker {
            lengths,
            strategy,
            pieces,
            wanted_left: n - have.count(),
            left_bytes: lengths.total() - have_bytes,
            have_bytes,
            wanted_bytes: lengths.total(),
            have,
            failed: Bitfield::new(n),
            avail,
            active: Vec::new(),
            max_active: max_active.max(1),
            verifying: 0,
        }
    }

    /// Restricts the plan to the `wanted` pieces (a file selection): the others are never picked and
    /// completion no longer waits for them. Pieces already verified stay verified.
    pub fn select(mut self, wanted: &Bitfield) -> Picker {
        self.wanted_bytes = 0;
        self.left_bytes = 0;
        for p in self.lengths.pieces() {
            let i = p.get();
            if wanted.get(i) {
                self.wanted_bytes += u64::from(self.lengths.piece_len(p));
                if !self.have.get(i) {
                    self.left_bytes += u64::from(self.lengths.piece_len(p));
                }
            } else if matches!(self.pieces[i as usize], Piece::Missing) {
                self.pieces[i as usize] = Piece::Unwanted;
                self.avail.remove(i);
                self.wanted_left -= 1;
            }
        }
        self
    }

    /// Every wanted piece not verified yet, with how many connected peers have it.
    pub fn missing(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..self.lengths.piece_count())
            .filter(|&i| self.is_wanted_missing(i))
            .map(|i| (i, self.avail.get(i)))
    }

    fn is_wanted_missing(&self, i: u32) -> bool {
        self.pieces
            .get(i as usize)
            .is_some_and(|p| !matches!(p, Piece::Have | Piece::Unwanted))
    }

    /// The torrent's sizes.
    pub fn lengths(&self) -> Lengths {
        self.lengths
    }

    /// Our verified pieces.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Whether every wanted piece is verified (with no selection: every piece).
    pub fn is_complete(&self) -> bool {
        self.wanted_left == 0
    }

    /// Whether every piece of the torrent is verified: we are a seed.
    pub fn has_all(&self) -> bool {
        self.have.is_full()
    }

    /// Bytes of wanted pieces not yet verified.
    pub fn left(&self) -> u64 {
        self.left_bytes
    }

    /// Bytes of the whole torrent not yet verified (the tracker's `left`).
    pub fn left_all(&self) -> u64 {
        self.lengths.total() - self.have_bytes
    }

    /// Bytes in the wanted pieces (the whole torrent with no selection).
    pub fn wanted_bytes(&self) -> u64 {
        self.wanted_bytes
    }

    /// Whether every block still missing is already requested from someone.
    pub fn in_endgame(&self) -> bool {
        self.avail.is_empty() && self.active.iter().all(|&i| self.active_ref(i).free == 0)
    }

    /// How many peers announced `piece`.
    pub fn availability(&self, piece: PieceIndex) -> u32 {
        self.avail.get(piece.get())
    }

    /// A peer's bitfield arrived.
    pub fn add_peer(&mut self, has: &Bitfield) {
        for i in ones(has) {
            self.avail.increment(i);
        }
    }

    /// A peer left: forget what it had (its requests are returned with [`Picker::unrequest`]).
    pub fn remove_peer(&mut self, has: &Bitfield) {
        for i in ones(has) {
            self.avail.decrement(i);
        }
    }

    /// A peer announced one more piece.
    pub fn add_have(&mut self, piece: PieceIndex) {
        self.avail.increment(piece.get());
    }

    /// Whether a peer with `has` has any wanted piece we still need.
    pub fn wants_any(&self, has: &Bitfield) -> bool {
        ones(has).any(|i| self.is_wanted_missing(i))
    }

    /// Reserves up to `max` blocks for `peer`, which has `has`. Order: pieces this peer is already
    /// fetching, new pieces by strategy, other partial pieces, then (endgame) blocks others were asked
    /// for.
    pub fn pick<R: Rng>(
        &mut self,
        peer: PeerKey,
        has: &Bitfield,
        max: usize,
        rng: &mut R,
    ) -> Vec<BlockRef> {
        self.pick_inner(peer, has, max, rng, false)
    }

    /// Like [`Picker::pick`] for a web seed (BEP 19), which has everything and wants long byte ranges:
    /// a new piece is chosen by strategy, then the run goes on with the following pieces while they
    /// are missing, so one HTTP request can cover many pieces.
    pub fn pick_run<R: Rng>(
        &mut self,
        peer: PeerKey,
        has: &Bitfield,
        max: usize,
        rng: &mut R,
    ) -> Vec<BlockRef> {
        self.pick_inner(peer, has, max, rng, true)
    }

    fn pick_inner<R: Rng>(
        &mut self,
        peer: PeerKey,
        has: &Bitfield,
        max: usize,
        rng: &mut R,
        contiguous: bool,
    ) -> Vec<BlockRef> {
        let mut out = Vec::new();
        if max == 0 {
            return out;
        }
        // 1. Pieces this peer is already working on, that `has` allows (a peer choking us is
        // offered only its allowed-fast pieces, BEP 6, even if it was working on others).
        for k in 0..self.active.len() {
            let i = self.active[k];
            if has.get(i) && self.active_ref(i).peers.contains(&peer) {
                let cap = self.cap(i, peer, max, contiguous);
                self.take_free(i, peer, cap, &mut out);
            }
        }
        // 2. New pieces.
        let mut last: Option<u32> = None;
        while out.len() < max
            && self.active.len() + self.verifying < self.max_active
            && !self.avail.is_empty()
        {
            let next = last
                .map(|l| l + 1)
                .filter(|&n| contiguous && n < self.lengths.piece_count() && has.get(n))
                .filter(|&n| matches!(self.pieces[n as usize], Piece::Missing));
            let Some(i) = next.or_else(|| {
                let i = self.choose_new(has, rng)?;
                Some(if contiguous {
                    self.gap_start(i, has)
                } else {
                    i
                })
            }) else {
                break;
            };
            last = Some(i);
            self.start(i);
            if self.failed.get(i) {
                self.active_mut(i).owner = Some(peer);
            }
            let cap = self.cap(i, peer, max, contiguous);
            self.take_free(i, peer, cap, &mut out);
        }
        // 3. Other partial pieces the peer can serve.
        for k in 0..self.active.len() {
            if out.len() >= max {
                break;
            }
            let i = self.active[k];
            let a = self.active_ref(i);
            if !has.get(i) || a.free == 0 || a.owner.is_some_and(|o| o != peer) {
                continue;
            }
            if self.failed.get(i) && a.owner.is_none() {
                self.active_mut(i).owner = Some(peer);
            }
            let cap = self.cap(i, peer, max, contiguous);
            self.take_free(i, peer, cap, &mut out);
        }
        // 4. Endgame: duplicate requests for blocks still in flight elsewhere.
        if out.is_empty() && self.in_endgame() {
            for k in 0..self.active.len() {
                let i = self.active[k];
                if !has.get(i) {
                    continue;
                }
                let lengths = self.lengths;
                let a = self.active_mut(i);
                for (b, block) in a.blocks.iter_mut().enumerate() {
                    if out.len() >= max {
                        break;
                    }
                    if let Block::Requested(peers) = block {
                        if !peers.contains(&peer) && peers.len() < MAX_ENDGAME_REQUESTERS {
                            peers.push(peer);
                            out.extend(block_ref(lengths, i, b));
                        }
                    }
                }
                if !a.peers.contains(&peer) {
                    a.peers.push(peer);
                }
            }
        }
        out
    }

    /// A block arrived from `peer` (requested or not).
    pub fn received(&mut self, peer: PeerKey, block: BlockRef) -> Receipt {
        let i = block.piece.get();
        let Piece::Active(a) = &mut self.pieces[i as usize] else {
            return Receipt::Useless;
        };
        let b = (block.offset / crate::types::BLOCK_LEN) as usize;
        let cancel = match std::mem::replace(&mut a.blocks[b], Block::Received) {
            Block::Received => return Receipt::Useless,
            Block::Free => {
                a.free -= 1;
                Vec::new()
            }
            Block::Requested(peers) => peers.into_iter().filter(|&p| p != peer).collect(),
        };
        a.received += 1;
        let complete = a.received as usize == a.blocks.len();
        if complete {
            self.pieces[i as usize] = Piece::Verifying;
            self.verifying += 1;
            self.active.retain(|&x| x != i);
        }
        Receipt::Useful { complete, cancel }
    }

    /// Whether `block` is still to be received (its piece in progress, the block not yet in).
    pub fn wants_block(&self, block: BlockRef) -> bool {
        let b = (block.offset / crate::types::BLOCK_LEN) as usize;
        match self.pieces.get(block.piece.get() as usize) {
            Some(Piece::Active(a)) => a.blocks.get(b).is_some_and(|x| *x != Block::Received),
            _ => false,
        }
    }

    /// `peer` will not deliver `block` (choked, timed out, gone): it goes back to the pool unless
    /// someone else is also fetching it.
    pub fn unrequest(&mut self, peer: PeerKey, block: BlockRef) {
        let i = block.piece.get();
        let Piece::Active(a) = &mut self.pieces[i as usize] else {
            return;
        };
        let b = (block.offset / crate::types::BLOCK_LEN) as usize;
        if let Block::Requested(peers) = &mut a.blocks[b] {
            peers.retain(|&p| p != peer);
            if peers.is_empty() {
                a.blocks[b] = Block::Free;
                a.free += 1;
            }
        }
        let still = a
            .blocks
            .iter()
            .any(|blk| matches!(blk, Block::Requested(p) if p.contains(&peer)));
        if !still {
            a.peers.retain(|&p| p != peer);
            if a.owner == Some(peer) {
                a.owner = None;
            }
        }
        if a.received == 0 && a.free as usize == a.blocks.len() {
            // Nobody is on it and nothing arrived: back to missing, freeing its active slot.
            self.pieces[i as usize] = Piece::Missing;
            self.avail.insert(i);
            self.active.retain(|&x| x != i);
        }
    }

    /// The hash check of a complete piece finished.
    pub fn verified(&mut self, piece: PieceIndex, ok: bool) {
        let i = piece.get();
        if !matches!(self.pieces[i as usize], Piece::Verifying) {
            return;
        }
        self.verifying -= 1;
        if ok {
            self.pieces[i as usize] = Piece::Have;
            self.have.set(i);
            self.wanted_left -= 1;
            let bytes = piece_bytes(self.lengths, i);
            self.have_bytes += bytes;
            self.left_bytes = self.left_bytes.saturating_sub(bytes);
        } else {
            self.pieces[i as usize] = Piece::Missing;
            self.avail.insert(i);
            self.failed.set(i);
        }
    }

    /// A new piece for a peer with `has`, by strategy (random for the first pieces of rarest-first).
    fn choose_new<R: Rng>(&mut self, has: &Bitfield, rng: &mut R) -> Option<u32> {
        let strategy = match self.strategy {
            Strategy::Rarest if self.have.count() < RANDOM_FIRST_PIECES => Strategy::Random,
            s => s,
        };
        match strategy {
            Strategy::Sequential => self.avail.lowest(has),
            Strategy::Random => self.avail.random(has, rng),
            Strategy::Rarest => self.avail.rarest(has, rng),
        }
    }

    /// The first piece of the gap `i` is in: walking back over missing pieces the peer has, of the
    /// same availability (so rarest-first still holds). A web seed starting there gets the longest run
    /// (BEP 19's "gaps"), and two mirrors do not cut each other's runs short.
    fn gap_start(&self, mut i: u32, has: &Bitfield) -> u32 {
        let a = self.avail.get(i);
        while i > 0
            && has.get(i - 1)
            && matches!(self.pieces[i as usize - 1], Piece::Missing)
            && self.avail.get(i - 1) == a
        {
            i -= 1;
        }
        i
    }

    fn start(&mut self, i: u32) {
        let Some(piece) = self.lengths.piece(i) else {
            return;
        };
        let n = self.lengths.block_count(piece);
        self.pieces[i as usize] = Piece::Active(Box::new(Active {
            blocks: vec![Block::Free; n as usize],
            free: n,
            received: 0,
            peers: Vec::new(),
            owner: None,
        }));
        self.active.push(i);
        self.avail.remove(i);
    }

    /// How far `take_free` may fill the reservation for piece `i`. A web seed (`contiguous`) takes a
    /// piece kept for it alone whole: were it to stall with part of it, the rest would be reserved to
    /// it and out of the endgame's reach.
    fn cap(&self, i: u32, peer: PeerKey, max: usize, contiguous: bool) -> usize {
        if contiguous && self.active_ref(i).owner == Some(peer) {
            usize::MAX
        } else {
            max
        }
    }

    fn take_free(&mut self, i: u32, peer: PeerKey, max: usize, out: &mut Vec<BlockRef>) {
        let lengths = self.lengths;
        let a = self.active_mut(i);
        if a.free == 0 || out.len() >= max {
            return;
        }
        for (b, block) in a.blocks.iter_mut().enumerate() {
            if out.len() >= max {
                break;
            }
            if *block == Block::Free {
                *block = Block::Requested(vec![peer]);
                a.free -= 1;
                out.extend(block_ref(lengths, i, b));
            }
        }
        if !a.peers.contains(&peer) {
            a.peers.push(peer);
        }
    }

    fn active_ref(&self, i: u32) -> &Active {
        match &self.pieces[i as usize] {
            Piece::Active(a) => a,
            _ => unreachable!("piece {i} listed as active"),
        }
    }

    fn active_mut(&mut self, i: u32) -> &mut Active {
        match &mut self.pieces[i as usize] {
            Piece::Active(a) => a,
            _ => unreachable!("piece {i} listed as active"),
        }
    }
}

fn block_ref(lengths: Lengths, piece: u32, b: usize) -> Option<BlockRef> {
    lengths.block(lengths.piece(piece)?, b as u32)
}

fn piece_bytes(lengths: Lengths, i: u32) -> u64 {
    lengths
        .piece(i)
        .map_or(0, |p| u64::from(lengths.piece_len(p)))
}

mod avail;
#[cfg(test)]
mod tests;
