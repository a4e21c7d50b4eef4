//! Per-block blame for v2 pieces (BEP 52). A v2 piece's hash is the root of its 16 KiB blocks'
//! subtree, so when a piece that several peers sent fails its check, the leaf hashes of its blocks
//! (a `hash request` for layer 0, no proof layers: the piece hash we trust is their subtree's root)
//! tell which blocks were bad, and each bad block is blamed on the one peer that sent it.
//!
//! The rules are pure: [`request_for`] (what to ask), [`leaves_prove`] (whether a reply is the
//! truth), [`bad_blocks`] and [`culprits`] (who to blame), [`choose`] (whom to ask). [`Pending`]
//! keeps the failed pieces waiting for an answer, bounded in number and time; a piece nobody
//! answers for within [`ANSWER_WITHIN`] falls back to the whole-piece rule of
//! [`super::state::Torrent::verified`] (a sole contributor is struck; several are not, and the piece
//! is fetched again from one peer).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::state::{Command, Source};
use super::Ctx;
use crate::merkle::{self, Hash};
use crate::storage::check::V2Blocks;
use crate::wire::hashes::{HashRequest, Hashes, MAX_HASHES};

/// Failed pieces waiting for their leaf hashes at once; more are judged by the whole-piece rule.
pub const MAX_PENDING: usize = 16;
/// How long the peers asked have to answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(30);
/// Peers asked for one piece's leaf hashes.
pub const MAX_ASKED: usize = 3;

/// The request for the leaf hashes of the piece `b` describes; `None` when there is nothing to ask
/// (a piece of one block: its sender is all there is to blame) or it does not fit one reply.
pub fn request_for(b: &V2Blocks) -> Option<HashRequest> {
    let length = 1u32.checked_shl(b.height)?;
    if b.height == 0 || length > MAX_HASHES {
        return None;
    }
    Some(HashRequest {
        pieces_root: b.root,
        base_layer: 0,
        index: u32::try_from(b.first_leaf).ok()?,
        length,
        proof_layers: 0,
    })
}

/// Whether `leaves`, all `2^height` of them, hash up to `hash`: then each is a block's true hash.
pub fn leaves_prove(leaves: &[Hash], height: u32, hash: &Hash) -> bool {
    leaves.len() as u64 == 1u64 << height.min(merkle::MAX_HEIGHT)
        && merkle::subtree_root(leaves, 0, height) == Some(*hash)
}

/// Indices of the blocks whose hash (`got`, one per block received) is not the true one (`want`).
pub fn bad_blocks(got: &[Hash], want: &[Hash]) -> Vec<usize> {
    got.iter()
        .enumerate()
        .filter(|&(i, g)| want.get(i) != Some(g))
        .map(|(i, _)| i)
        .collect()
}

/// The sources of the `bad` blocks, each once, in order of first bad block.
pub fn culprits(bad: &[usize], senders: &[Option<Source>]) -> Vec<Source> {
    let mut out: Vec<Source> = Vec::new();
    for s in bad
        .iter()
        .filter_map(|&i| senders.get(i).copied().flatten())
    {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Whether a failed piece is worth a hash request: two or more peers sent its blocks (one peer alone
/// is blamed for the whole piece anyway).
pub fn worth_asking(senders: &[Option<Source>]) -> bool {
    let mut peers = senders.iter().filter_map(|s| match s {
        Some(Source::Peer(a)) => Some(*a),
        _ => None,
    });
    let Some(first) = peers.next() else {
        return false;
    };
    peers.any(|a| a != first)
}

/// Whom to ask, at most `n`: seeds first (libtorrent seeds keep every file's full tree), peers that
/// did not send the piece before those that did (an honest one is likelier to hold the leaves).
pub fn choose(
    peers: &[(SocketAddr, bool)],
    senders: &[Option<Source>],
    n: usize,
) -> Vec<SocketAddr> {
    let sent = |a: &SocketAddr| senders.contains(&Some(Source::Peer(*a)));
    let mut ranked: Vec<(u8, SocketAddr)> = peers
        .iter()
        .map(|(a, seed)| (u8::from(!seed) * 2 + u8::from(sent(a)), *a))
        .collect();
    ranked.sort_by_key(|&(rank, _)| rank);
    ranked.into_iter().take(n).map(|(_, a)| a).collect()
}

/// A failed piece waiting for its leaf hashes.
#[derive(Debug, Clone)]
struct Case {
    piece: u32,
    request: HashRequest,
    hash: Hash,
    height: u32,
    /// Hashes of the blocks as received.
    got: Vec<Hash>,
    senders: Vec<Option<Source>>,
    asked: Vec<SocketAddr>,
    deadline: Instant,
}

/// The failed pieces waiting for leaf hashes, behind a lock of their own.
#[derive(Debug, Default)]
pub struct Pending {
    cases: Mutex<Vec<Case>>,
}

/// What a `hashes` reply settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The piece.
    pub piece: u32,
    /// Its bad blocks.
    pub bad: Vec<usize>,
    /// Who sent them.
    pub culprits: Vec<Source>,
}

impl Pending {
    fn cases(&self) -> std::sync::MutexGuard<'_, Vec<Case>> {
        self.cases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pieces waiting.
    pub fn len(&self) -> usize {
        self.cases().len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records piece `piece` as waiting for `request`'s answer from `asked`; `false` (nothing
    /// recorded) when [`MAX_PENDING`] wait already or the piece already waits.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &self,
        piece: u32,
        request: HashRequest,
        b: &V2Blocks,
        got: Vec<Hash>,
        senders: Vec<Option<Source>>,
        asked: Vec<SocketAddr>,
        now: Instant,
    ) -> bool {
        let mut cases = self.cases();
        cases.retain(|c| c.deadline > now);
        if cases.len() >= MAX_PENDING || cases.iter().any(|c| c.piece == piece) {
            return false;
        }
        cases.push(Case {
            piece,
            request,
            hash: b.hash,
            height: b.height,
            got,
            senders,
            asked,
            deadline: now + ANSWER_WITHIN,
        });
        true
    }

    /// A `hashes` reply from `from`: the verdict on the piece it answers, if it was asked, in time,
    /// and it proves the piece's hash (a wrong or late reply is ignored; the case stays open for the
    /// other peers asked).
    pub fn answered(&self, from: SocketAddr, reply: &Hashes, now: Instant) -> Option<Verdict> {
        let mut cases = self.cases();
        cases.retain(|c| c.deadline > now);
        let at = cases
            .iter()
            .position(|c| c.request == reply.request && c.asked.contains(&from))?;
        let c = &cases[at];
        if !reply.uncles().is_empty() || !leaves_prove(reply.base(), c.height, &c.hash) {
            return None;
        }
        let bad = bad_blocks(&c.got, reply.base());
        let verdict = Verdict {
            piece: c.piece,
            culprits: culprits(&bad, &c.senders),
            bad,
        };
        cases.swap_remove(at);
        Some(verdict)
    }

    /// A `hash reject` from `from`: it is no longer waited for; the case closes once every peer asked
    /// has rejected.
    pub fn rejected(&self, from: SocketAddr, request: &HashRequest) {
        let mut cases = self.cases();
        for c in cases.iter_mut().filter(|c| c.request == *request) {
            c.asked.retain(|a| *a != from);
        }
        cases.retain(|c| !c.asked.is_empty());
    }
}

/// A v2 piece failed its check: asks up to [`MAX_ASKED`] connected peers for its leaf hashes, if
/// two or more peers sent it. `got` holds the hashes of its blocks as received ([`leaves_of`]).
pub fn start(ctx: &Ctx, piece: u32, got: Vec<Hash>, senders: Vec<Option<Source>>) {
    let Some(b) = ctx.check.v2_blocks(piece) else {
        return;
    };
    let Some(request) = request_for(&b).filter(|_| worth_asking(&senders)) else {
        return;
    };
    let t = ctx.lock();
    let peers: Vec<(SocketAddr, bool)> = t.peers().map(|p| (p.addr, p.seed)).collect();
    let asked = choose(&peers, &senders, MAX_ASKED);
    if asked.is_empty()
        || !ctx.blame.add(
            piece,
            request,
            &b,
            got,
            senders,
            asked.clone(),
            Instant::now(),
        )
    {
        return;
    }
    for p in t.peers().filter(|p| asked.contains(&p.addr)) {
        let _ = p.tx.send(Command::HashRequest(request));
    }
    tracing::debug!(
        piece,
        ?asked,
        "asked for the leaf hashes of a failed v2 piece"
    );
}

/// The hashes of the blocks of v2 piece `piece` as received (`data`, the layout's piece), for
/// [`start`]; `None` for a piece with no v2 hash or one not worth asking about. Run on the blocking
/// pool: it hashes the whole piece.
pub fn leaves_of(
    ctx: &Ctx,
    piece: u32,
    data: &[u8],
    senders: &[Option<Source>],
) -> Option<Vec<Hash>> {
    let b = ctx.check.v2_blocks(piece)?;
    request_for(&b).filter(|_| worth_asking(senders))?;
    Some(merkle::leaf_hashes(data.get(..b.len as usize)?))
}

/// A `hashes` reply from `from` on a peer connection: strikes the senders of the bad blocks it
/// shows, if it answers a failed piece.
pub fn answered(ctx: &Ctx, from: SocketAddr, reply: &Hashes) {
    let Some(v) = ctx.blame.answered(from, reply, Instant::now()) else {
        return;
    };
    for source in &v.culprits {
        let Source::Peer(addr) = *source else {
            continue;
        };
        let banned = ctx.lock().strike(addr);
        tracing::info!(
            peer = %addr,
            piece = v.piece,
            blocks = ?v.bad,
            banned,
            "struck: sent blocks that failed their Merkle check"
        );
    }
}

#[cfg(test)]
mod tests;
