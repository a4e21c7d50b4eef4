//! Who we upload to. Every round (10 s, and early when a peer becomes interested while a slot is
//! free) [`SLOTS`] interested peers hold a regular slot, plus one optimistic slot given to another
//! interested peer every [`OPTIMISTIC_EVERY`] rounds (and at once when its holder leaves, loses
//! interest or is promoted to a regular slot).
//!
//! - **Downloading: tit-for-tat.** The regular slots go to the peers that sent us the most over
//!   the last [`WINDOW_ROUNDS`] rounds (20 s, BitTorrent's rolling average): the bytes a peer moved
//!   since then, from its byte count at each round, so one burst does not hold a slot and a steady
//!   peer is not outranked by a momentary one. Snubbed peers get no regular slot. The optimistic
//!   slot goes at random, new peers three times as likely.
//! - **Seeding: round robin**, as libtorrent's default `seed_choking_algorithm`. A peer's *turn*
//!   starts when we unchoke it (either slot); it is *used up* once the peer has held it for
//!   [`TURN_MIN`] (a minute) and either received [`QUOTA_PIECES`] pieces' worth since (libtorrent's
//!   `seeding_piece_quota`) or held it for [`TURN_MAX`]. Interested peers are ranked, and the first
//!   [`SLOTS`] unchoked:
//!   1. turns not used up whose peer moved bytes over the window, fastest first (the status quo;
//!      a turn younger than a [`ROUND`], begun in an early round, counts as moving);
//!   2. every other peer whose turn is not used up, longest waiting first: a choked peer waits since
//!      it was choked (or first seen), a slot holder that moved nothing over the window since its
//!      turn began, so it yields to anyone who has waited longer;
//!   3. used-up turns last (fastest, then oldest first): they keep a slot only while nobody waits.
//!
//!   Ties go to the lower key. The bytes a peer moved count only while it is unchoked (what is
//!   still in flight after a choke does not rank it). Unlike libtorrent, [`TURN_MAX`] bounds a
//!   turn: a slow peer cannot hold a slot for hours short of its quota.
//!
//!   The optimistic slot rotates in turn too, as libtorrent's does: to a choked peer, the one whose
//!   last optimistic unchoke is the oldest (never first, so new peers come early), then the
//!   longest waiting. A random pick would not do: the optimistic holder, moving bytes, takes the next
//!   regular slot that frees, so a random optimistic slot would make the whole rotation random.
//!
//! Pure and deterministic given its inputs: the session's timer calls [`Choker::round`] with the
//! time and the random source; the state across rounds is private.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::picker::PeerKey;

/// Between rounds (the session's timer).
pub const ROUND: Duration = Duration::from_secs(10);
/// Regular unchoke slots.
pub const SLOTS: usize = 4;
/// Rounds between optimistic rotations (3 × 10 s = 30 s).
pub const OPTIMISTIC_EVERY: u32 = 3;
/// Rounds the rate is measured over (2 × 10 s = 20 s).
pub const WINDOW_ROUNDS: usize = 2;
/// Pieces' worth of upload that make a seeding turn's share (libtorrent's `seeding_piece_quota`).
pub const QUOTA_PIECES: u64 = 20;
/// A seeding turn lasts at least this long, quota or not (libtorrent: a minute).
pub const TURN_MIN: Duration = Duration::from_secs(60);
/// A seeding turn is used up after this long even short of its quota: 18 rounds, so a slow peer
/// does not hold one of the [`SLOTS`] for hours (20 pieces of 4 MiB at 10 KiB/s take 2.3 h).
pub const TURN_MAX: Duration = Duration::from_secs(180);

/// One peer as the choker sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The peer.
    pub key: PeerKey,
    /// Whether it wants our data.
    pub interested: bool,
    /// Payload bytes it has moved since it connected, in the direction that ranks it: to us while we
    /// download, from us once we seed.
    pub bytes: u64,
    /// Sent us nothing for a minute while we asked.
    pub snubbed: bool,
    /// Connected less than a minute ago (tit-for-tat's optimistic pick favours it).
    pub new: bool,
}

/// Which rule ranks the regular slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Tit-for-tat: `bytes` counts their upload to us.
    Downloading,
    /// Round robin: `bytes` counts our upload to them; a turn's quota is [`QUOTA_PIECES`] pieces
    /// of `piece_len` bytes.
    Seeding {
        /// The torrent's piece length.
        piece_len: u64,
    },
}

impl Mode {
    fn seeding(self) -> bool {
        matches!(self, Mode::Seeding { .. })
    }
}

/// What the choker remembers of one present peer.
#[derive(Debug)]
struct Seen {
    /// Byte counts at the last [`WINDOW_ROUNDS`] rounds, oldest first.
    counts: VecDeque<u64>,
    /// Unchoked by the last round (either slot).
    unchoked: bool,
    /// When its present state began: its turn if unchoked, its wait if choked (first seen if it
    /// never was unchoked).
    since: Instant,
    /// Its byte count when last unchoked (taken again when the direction of the counts changes).
    at_unchoke: u64,
    /// When it was last given the optimistic slot.
    last_optimistic: Option<Instant>,
}

/// Unchoke decisions across rounds.
#[derive(Debug, Default)]
pub struct Choker {
    optimistic: Option<PeerKey>,
    round: u32,
    /// Every present peer.
    seen: HashMap<PeerKey, Seen>,
    /// The direction the counts were taken in (seeding: our upload).
    seeding: bool,
}

impl Choker {
    /// One round at `now`: the set of peers to have unchoked (the caller applies all of it).
    /// `mode` says which way `bytes` counts; when it changes, the window starts again.
    pub fn round<R: Rng>(
        &mut self,
        peers: &[Candidate],
        mode: Mode,
        now: Instant,
        rng: &mut R,
    ) -> HashSet<PeerKey> {
        let rates = self.window(peers, mode.seeding(), now);
        let eligible: Vec<&Candidate> = peers
            .iter()
            .filter(|c| c.interested && !c.snubbed)
            .collect();
        let mut out = match mode {
            Mode::Downloading => fastest(eligible, &rates),
            Mode::Seeding { piece_len } => self.rotation(&eligible, &rates, piece_len, now),
        };
        let keep = self
            .optimistic
            .filter(|k| !out.contains(k) && peers.iter().any(|c| c.key == *k && c.interested));
        if self.round % OPTIMISTIC_EVERY == 0 || keep.is_none() {
            self.optimistic = match mode {
                Mode::Downloading => pick_optimistic(peers, &out, rng),
                Mode::Seeding { .. } => self.next_optimistic(peers, &out),
            };
            if let Some(s) = self.optimistic.and_then(|k| self.seen.get_mut(&k)) {
                s.last_optimistic = Some(now);
            }
        }
        self.round = self.round.wrapping_add(1);
        if let Some(k) = self.optimistic {
            out.insert(k);
        }
        self.record(peers, &out, now);
        out
    }

    /// Bytes each peer moved over the window, and this round's counts recorded. Peers gone are
    /// forgotten, new ones remembered from `now`; a peer seen for less than the window (or since
    /// the direction changed) counts from its connection.
    fn window(
        &mut self,
        peers: &[Candidate],
        seeding: bool,
        now: Instant,
    ) -> HashMap<PeerKey, u64> {
        let turned = seeding != self.seeding;
        self.seeding = seeding;
        let present: HashSet<PeerKey> = peers.iter().map(|c| c.key).collect();
        self.seen.retain(|k, _| present.contains(k));
        let mut rates = HashMap::with_capacity(peers.len());
        for c in peers {
            let s = self.seen.entry(c.key).or_insert_with(|| Seen {
                counts: VecDeque::new(),
                unchoked: false,
                since: now,
                at_unchoke: c.bytes,
                last_optimistic: None,
            });
            if turned {
                s.counts.clear();
                s.at_unchoke = c.bytes;
            }
            let past = if s.counts.len() >= WINDOW_ROUNDS {
                s.counts.front().copied().unwrap_or(0)
            } else {
                0
            };
            rates.insert(c.key, c.bytes.saturating_sub(past));
            s.counts.push_back(c.bytes);
            while s.counts.len() > WINDOW_ROUNDS {
                s.counts.pop_front();
            }
        }
        rates
    }

    /// The seeding round robin's regular slots (the rule is in the module doc).
    fn rotation(
        &self,
        eligible: &[&Candidate],
        rates: &HashMap<PeerKey, u64>,
        piece_len: u64,
        now: Instant,
    ) -> HashSet<PeerKey> {
        let quota = piece_len.saturating_mul(QUOTA_PIECES);
        let mut ranked: Vec<(bool, Reverse<u64>, Instant, PeerKey)> = eligible
            .iter()
            .filter_map(|c| {
                let s = self.seen.get(&c.key)?;
                let held = now.saturating_duration_since(s.since);
                let used_up = s.unchoked
                    && held >= TURN_MIN
                    && (c.bytes.saturating_sub(s.at_unchoke) >= quota || held >= TURN_MAX);
                let rate = match (s.unchoked, held < ROUND) {
                    (false, _) => 0,
                    // Not a round old: the peer has not had time to ask yet.
                    (true, true) => rates.get(&c.key).copied().unwrap_or(0).max(1),
                    (true, false) => rates.get(&c.key).copied().unwrap_or(0),
                };
                Some((used_up, Reverse(rate), s.since, c.key))
            })
            .collect();
        ranked.sort_unstable();
        ranked.iter().take(SLOTS).map(|r| r.3).collect()
    }

    /// The seeding optimistic slot: among the interested peers outside `taken`, a choked one
    /// before one still unchoked (its turn just used up, or the optimistic holder), then the
    /// oldest last optimistic unchoke (never first), then the longest waiting, then the lowest key.
    fn next_optimistic(&self, peers: &[Candidate], taken: &HashSet<PeerKey>) -> Option<PeerKey> {
        peers
            .iter()
            .filter(|c| c.interested && !taken.contains(&c.key))
            .filter_map(|c| {
                let s = self.seen.get(&c.key)?;
                Some((s.unchoked, s.last_optimistic, s.since, c.key))
            })
            .min()
            .map(|m| m.3)
    }

    /// Remembers who is unchoked from this round on: a peer whose state changes starts its turn
    /// (and its quota count) or its wait at `now`.
    fn record(&mut self, peers: &[Candidate], out: &HashSet<PeerKey>, now: Instant) {
        for c in peers {
            let Some(s) = self.seen.get_mut(&c.key) else {
                continue;
            };
            let on = out.contains(&c.key);
            if on != s.unchoked {
                s.unchoked = on;
                s.since = now;
                if on {
                    s.at_unchoke = c.bytes;
                }
            }
        }
    }
}

/// Tit-for-tat's regular slots: the highest rates; the sort is stable, so equal rates keep the
/// session's order.
fn fastest(mut eligible: Vec<&Candidate>, rates: &HashMap<PeerKey, u64>) -> HashSet<PeerKey> {
    eligible.sort_by_key(|c| Reverse(rates.get(&c.key).copied().unwrap_or(0)));
    eligible.iter().take(SLOTS).map(|c| c.key).collect()
}

fn pick_optimistic<R: Rng>(
    peers: &[Candidate],
    taken: &HashSet<PeerKey>,
    rng: &mut R,
) -> Option<PeerKey> {
    let pool: Vec<&Candidate> = peers
        .iter()
        .filter(|c| c.interested && !taken.contains(&c.key))
        .collect();
    let total: u32 = pool.iter().map(|c| if c.new { 3 } else { 1 }).sum();
    if total == 0 {
        return None;
    }
    let mut ticket = rng.random_range(0..total);
    for c in pool {
        let w = if c.new { 3 } else { 1 };
        if ticket < w {
            return Some(c.key);
        }
        ticket -= w;
    }
    None
}

#[cfg(test)]
mod tests;
