//! Fetching one info dictionary from several peers: which piece to ask of whom, what to accept, and
//! the check against the info-hashes (SHA-1, SHA-256 for a v2 link, both for a hybrid's), with an audit that finds who lied after a failed check.
//!
//! Invariants:
//! - a source is used only after [`MetadataAssembler::add_source`] accepted its claimed size;
//! - every piece is `Missing`, `Asked` (by the source that holds the live request) or `Have`;
//! - a source's `asked` list holds every request it has not answered, at most
//!   [`MAX_OUTSTANDING_PER_SOURCE`]; a request older than [`REQUEST_TIMEOUT`] stays in the list (the
//!   stalled source gets nothing new, and its late answer is still accepted) but its piece may be
//!   asked of another source;
//! - during an audit, only the audit's owner's pieces are kept, so a failed round has one author.

use std::collections::HashMap;
use std::hash::Hash;
use std::mem;
use std::time::{Duration, Instant};

use super::{metadata_size, piece_count, piece_len, MetadataError, METADATA_PIECE_LEN};
use crate::types::InfoHashes;

/// How long a source has to answer a request before its piece may go to another source: a 16 KiB
/// piece takes well under a second on any usable link; libtorrent waits 3 s before asking again.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests in flight per source: hides a round trip or two (libtorrent keeps 2) without making one
/// slow source hold much of the metadata.
pub const MAX_OUTSTANDING_PER_SOURCE: usize = 4;
/// How long a source that sent a `reject` is left alone: it lacks the metadata or limits requests,
/// and may have it a minute later (libtorrent waits one minute too).
pub const REJECT_BACKOFF: Duration = Duration::from_secs(60);

/// What an accepted `data` message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress<S> {
    /// The piece was stored: `have` of `pieces` pieces held.
    Stored { have: u32, pieces: u32 },
    /// The piece was not needed (another source delivered it first, or an audit takes pieces from
    /// another source only). Nothing to blame.
    Redundant,
    /// Every piece arrived and the SHA-1 matches the info-hash: `info` is the raw info dictionary.
    /// `culprits` are the sources an audit proved to have sent wrong pieces: drop them.
    Complete { info: Vec<u8>, culprits: Vec<S> },
    /// Every piece arrived but the SHA-1 does not match; all pieces were discarded and the fetch
    /// starts again. `culprits` wrote the whole failed buffer alone: drop them (the assembler already
    /// refuses them). `suspects` shared a failed buffer: keep them; an audit now fetches each round
    /// from a single source and names the liars in a later `Complete` or `HashMismatch`.
    HashMismatch { culprits: Vec<S>, suspects: Vec<S> },
}

/// Why a source's `data` message was refused: drop that source (call
/// [`MetadataAssembler::source_gone`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Blame {
    /// Its `total_size` differs from the size the fetch was started with.
    #[error("metadata data claims {claimed} bytes in all, not the {expected} announced")]
    WrongTotalSize { claimed: u32, expected: u32 },
    /// A piece beyond the metadata.
    #[error("metadata piece {piece} out of range (there are {pieces})")]
    PieceOutOfRange { piece: u32, pieces: u32 },
    /// Data for a piece not asked of this source, or already answered.
    #[error("metadata piece {piece} was not requested from this peer (or was already sent)")]
    Unrequested { piece: u32 },
    /// A piece of the wrong length (every piece is 16 KiB but the last).
    #[error("metadata piece {piece} is {len} bytes, expected {expected}")]
    WrongLength {
        piece: u32,
        len: usize,
        expected: usize,
    },
}

/// One metadata piece.
#[derive(Debug, Clone, Copy)]
enum Slot<S> {
    Missing,
    /// Requested of `by` at `at` (the live request; older ones to other sources may be pending).
    Asked {
        by: S,
        at: Instant,
    },
    /// Stored, delivered by this source.
    Have(S),
}

/// One source's state.
#[derive(Debug, Default)]
struct Source {
    /// Requests not answered yet: (piece, when asked).
    asked: Vec<(u32, Instant)>,
    /// Why it is not asked for now, if it is not.
    barred: Option<Bar>,
}

/// A source left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bar {
    /// For [`REJECT_BACKOFF`] after it sent a `reject` at this instant.
    Rejected(Instant),
    /// For good (it alone wrote a buffer that failed the hash check).
    Forever,
}

/// After a hash failure with several contributors: their buffer, to compare with the good one.
#[derive(Debug)]
struct Audit<S> {
    /// The failed buffer.
    failed: Vec<u8>,
    /// Who delivered each piece of it.
    by: Vec<S>,
    /// The one source the current round takes pieces from.
    owner: Option<S>,
}

/// Fetches the info dictionary of one torrent, verified against its info-hash. `S` names a source
/// (a peer connection key). Memory: the buffer, allocated at the first piece to the claimed size
/// (at most `MAX_METADATA_SIZE`), plus, during an audit, the failed buffer of the same size; per
/// source, at most [`MAX_OUTSTANDING_PER_SOURCE`] requests.
///
/// Caller's protocol: [`new`](Self::new) from the first peer whose handshake `metadata_size` passes;
/// [`add_source`](Self::add_source) for each peer offering `ut_metadata`; [`next_request`](Self::next_request)
/// whenever a source may take a request (after an answer, and on a timer for timeouts); feed it
/// `data` / `reject`; [`source_gone`](Self::source_gone) on disconnect. A hostile first claimer can
/// name a size no honest peer shares: honest peers are then refused by `add_source`. Remember their
/// claims; when this assembler has no usable source left (`usable_sources` is 0, or every
/// contributor was blamed) while peers claim another size, replace it with one for the most
/// claimed other size.
#[derive(Debug)]
pub struct MetadataAssembler<S> {
    /// What the whole must hash to: SHA-1, SHA-256 (a v2 magnet link), or both (a hybrid's).
    ids: InfoHashes,
    size: u32,
    buf: Vec<u8>,
    slots: Vec<Slot<S>>,
    have: u32,
    sources: HashMap<S, Source>,
    audit: Option<Audit<S>>,
    done: bool,
}

impl<S: Copy + Eq + Hash> MetadataAssembler<S> {
    /// A fetch of the info dictionary known by `ids` (an `InfoHash`: SHA-1 alone), `metadata_size`
    /// bytes as a peer claimed (BEP 10 handshake). Refused if 0 or above `MAX_METADATA_SIZE`, before
    /// anything is requested.
    pub fn new(ids: impl Into<InfoHashes>, metadata_size: i64) -> Result<Self, MetadataError> {
        let size = super::metadata_size(metadata_size)?;
        Ok(MetadataAssembler {
            ids: ids.into(),
            size,
            buf: Vec::new(),
            slots: vec![Slot::Missing; piece_count(size as usize) as usize],
            have: 0,
            sources: HashMap::new(),
            audit: None,
            done: false,
        })
    }

    /// The metadata size this fetch expects.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Number of metadata pieces.
    pub fn pieces(&self) -> u32 {
        self.slots.len() as u32
    }

    /// Pieces held so far (this round).
    pub fn have(&self) -> u32 {
        self.have
    }

    /// Whether the info dictionary was returned by a `Complete`.
    pub fn is_complete(&self) -> bool {
        self.done
    }

    /// Whether an audit is running (rounds are fetched from one source at a time).
    pub fn is_auditing(&self) -> bool {
        self.audit.is_some()
    }

    /// Registers a source whose handshake claimed `claimed_size`; `false` if the claim is not this
    /// fetch's size (keep the peer; it is not a metadata source for this assembler).
    pub fn add_source(&mut self, source: S, claimed_size: i64) -> bool {
        let fits = metadata_size(claimed_size) == Ok(self.size);
        if fits {
            self.sources.entry(source).or_default();
        }
        fits
    }

    /// Sources that may still be asked for pieces (registered, not refused for good).
    pub fn usable_sources(&self) -> usize {
        (self.sources.values())
            .filter(|s| s.barred != Some(Bar::Forever))
            .count()
    }

    /// The next piece to request of `source`, if any: none to an unknown, barred or full source; a
    /// piece asked of another source only once that request is older than [`REQUEST_TIMEOUT`].
    pub fn next_request(&mut self, source: S, now: Instant) -> Option<u32> {
        if self.done {
            return None;
        }
        let src = self.sources.get_mut(&source)?;
        match src.barred {
            Some(Bar::Rejected(at)) if now.saturating_duration_since(at) >= REJECT_BACKOFF => {
                src.barred = None
            }
            Some(_) => return None,
            None => {}
        }
        if src.asked.len() >= MAX_OUTSTANDING_PER_SOURCE || !self.audit_admits(source, now) {
            return None;
        }
        let piece = self.pick(source, now)?;
        self.slots[piece] = Slot::Asked {
            by: source,
            at: now,
        };
        let piece = piece as u32;
        self.sources.get_mut(&source)?.asked.push((piece, now));
        Some(piece)
    }

    /// Whether `source` has a request older than [`REQUEST_TIMEOUT`] (the caller may drop it).
    pub fn is_stalled(&self, source: S, now: Instant) -> bool {
        self.sources
            .get(&source)
            .is_some_and(|s| s.asked.iter().any(|&(_, at)| expired(at, now)))
    }

    /// A `data` message from `source`. `Err`: drop the source.
    pub fn on_data(
        &mut self,
        source: S,
        piece: u32,
        total_size: u32,
        data: &[u8],
    ) -> Result<Progress<S>, Blame> {
        if self.done {
            return Ok(Progress::Redundant);
        }
        if total_size != self.size {
            return Err(Blame::WrongTotalSize {
                claimed: total_size,
                expected: self.size,
            });
        }
        let pieces = self.pieces();
        if piece >= pieces {
            return Err(Blame::PieceOutOfRange { piece, pieces });
        }
        let asked = &mut self
            .sources
            .get_mut(&source)
            .ok_or(Blame::Unrequested { piece })?
            .asked;
        let index =
            (asked.iter().position(|&(p, _)| p == piece)).ok_or(Blame::Unrequested { piece })?;
        asked.swap_remove(index);
        let expected = piece_len(self.size, piece);
        if data.len() != expected {
            return Err(Blame::WrongLength {
                piece,
                len: data.len(),
                expected,
            });
        }
        let slot = &mut self.slots[piece as usize];
        let foreign = self.audit.as_ref().is_some_and(|a| a.owner != Some(source));
        if matches!(slot, Slot::Have(_)) || foreign {
            return Ok(Progress::Redundant);
        }
        *slot = Slot::Have(source);
        self.have += 1;
        if self.buf.is_empty() {
            self.buf = vec![0; self.size as usize];
        }
        let start = piece as usize * METADATA_PIECE_LEN;
        self.buf[start..start + data.len()].copy_from_slice(data);
        if self.have < pieces {
            return Ok(Progress::Stored {
                have: self.have,
                pieces,
            });
        }
        Ok(self.verify())
    }

    /// A `reject` from `source`: the source is left alone for [`REJECT_BACKOFF`] and the pieces asked
    /// of it go to other sources (an answer it still sends for them is accepted).
    pub fn on_reject(&mut self, source: S, piece: u32, now: Instant) {
        let Some(src) = self.sources.get_mut(&source) else {
            return;
        };
        src.asked.retain(|&(p, _)| p != piece);
        if src.barred != Some(Bar::Forever) {
            src.barred = Some(Bar::Rejected(now));
        }
        self.release(source);
    }

    /// `source` disconnected (or was dropped): its requests go to other sources.
    pub fn source_gone(&mut self, source: S) {
        self.sources.remove(&source);
        self.release(source);
    }

    /// The first piece that is missing, else the first whose request to another source expired;
    /// never one `source` itself still owes.
    fn pick(&self, source: S, now: Instant) -> Option<usize> {
        let owed = &self.sources.get(&source)?.asked;
        let free = |p: usize| !owed.iter().any(|&(q, _)| q as usize == p);
        let missing = |s: &Slot<S>| matches!(s, Slot::Missing);
        let expired_elsewhere = |s: &Slot<S>| match *s {
            Slot::Asked { by, at } => by != source && expired(at, now),
            _ => false,
        };
        let slots = || self.slots.iter().enumerate();
        (slots().find(|&(p, s)| missing(s) && free(p)))
            .or_else(|| slots().find(|&(p, s)| expired_elsewhere(s) && free(p)))
            .map(|(p, _)| p)
    }

    /// Pieces live-asked of `source` become `Missing`; an audit round it owned starts over.
    fn release(&mut self, source: S) {
        for slot in &mut self.slots {
            if matches!(*slot, Slot::Asked { by, .. } if by == source) {
                *slot = Slot::Missing;
            }
        }
        if let Some(audit) = &mut self.audit {
            if audit.owner == Some(source) {
                audit.owner = None;
                self.restart_round();
            }
        }
    }

    /// During an audit, whether `source` may be asked: it owns the round, or takes over an empty
    /// round or one whose owner stalled (the round then starts over).
    fn audit_admits(&mut self, source: S, now: Instant) -> bool {
        let owner = match &self.audit {
            None => return true,
            Some(audit) => audit.owner,
        };
        match owner {
            Some(owner) if owner == source => true,
            Some(owner) if !self.is_stalled(owner, now) => false,
            _ => {
                if let Some(audit) = &mut self.audit {
                    audit.owner = Some(source);
                }
                self.restart_round();
                true
            }
        }
    }

    /// Forgets every piece of the current round (requests in flight stay in the sources' lists).
    fn restart_round(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = Slot::Missing);
        self.have = 0;
    }

    /// All pieces are in: the info-hash check, and what follows from it.
    fn verify(&mut self) -> Progress<S> {
        let buf = mem::take(&mut self.buf);
        let by: Vec<S> = (self.slots.iter())
            .filter_map(|s| match *s {
                Slot::Have(from) => Some(from),
                _ => None,
            })
            .collect();
        self.restart_round();
        if self.ids.matches(&buf) {
            self.done = true;
            self.sources.clear();
            let culprits = (self.audit.take()).map_or_else(Vec::new, |a| a.liars(&buf));
            return Progress::Complete {
                info: buf,
                culprits,
            };
        }
        let contributors = distinct(by.iter().copied());
        if let [only] = contributors[..] {
            if let Some(src) = self.sources.get_mut(&only) {
                src.barred = Some(Bar::Forever);
            }
            if let Some(audit) = &mut self.audit {
                audit.owner = None;
            }
            return Progress::HashMismatch {
                culprits: contributors,
                suspects: Vec::new(),
            };
        }
        // Only reachable outside an audit: an audit round has one contributor.
        self.audit = Some(Audit {
            failed: buf,
            by,
            owner: None,
        });
        Progress::HashMismatch {
            culprits: Vec::new(),
            suspects: contributors,
        }
    }
}

impl<S: Copy + Eq> Audit<S> {
    /// The sources whose pieces in the failed buffer differ from the verified `good` one.
    fn liars(&self, good: &[u8]) -> Vec<S> {
        let differs = |p: usize| {
            let range = p * METADATA_PIECE_LEN..good.len().min((p + 1) * METADATA_PIECE_LEN);
            self.failed.get(range.clone()) != good.get(range)
        };
        distinct((self.by.iter().enumerate()).filter_map(|(p, &s)| differs(p).then_some(s)))
    }
}

/// Whether a request sent `at` is older than [`REQUEST_TIMEOUT`] at `now`.
fn expired(at: Instant, now: Instant) -> bool {
    now.saturating_duration_since(at) >= REQUEST_TIMEOUT
}

/// The distinct items, in order of first appearance.
fn distinct<S: Eq>(items: impl Iterator<Item = S>) -> Vec<S> {
    let mut out = Vec::new();
    for s in items {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests;
