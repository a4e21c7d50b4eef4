//! Who we upload to: every round (10 s) the best 4 interested peers by rate unchoked — their upload to
//! us while we download, ours to them once we seed — and every third round one more, optimistic, slot
//! rotated at random, new peers three times as likely. Snubbed peers lose their slot. The rate is
//! over a window of [`WINDOW_ROUNDS`] rounds (20 s, BitTorrent's rolling average): the bytes a peer
//! moved since then, from its byte count at each round, so one burst does not hold a slot and a
//! steady peer is not outranked by a momentary one. Pure: the session's timer calls
//! [`Choker::round`].

use std::collections::{HashMap, HashSet, VecDeque};

use rand::Rng;

use crate::picker::PeerKey;

/// Regular unchoke slots.
pub const SLOTS: usize = 4;
/// Rounds between optimistic rotations (3 × 10 s = 30 s).
pub const OPTIMISTIC_EVERY: u32 = 3;
/// Rounds the rate is measured over (2 × 10 s = 20 s).
pub const WINDOW_ROUNDS: usize = 2;

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
    /// Connected less than a minute ago.
    pub new: bool,
}

/// Unchoke decisions across rounds.
#[derive(Debug, Default)]
pub struct Choker {
    optimistic: Option<PeerKey>,
    round: u32,
    /// Each present peer's byte counts at the last [`WINDOW_ROUNDS`] rounds, oldest first.
    history: HashMap<PeerKey, VecDeque<u64>>,
    /// The direction the counts were taken in (seeding: our upload).
    seeding: bool,
}

impl Choker {
    /// One round: the set of peers to have unchoked now. `seeding` says which way `bytes` counts;
    /// when it changes, the window starts again.
    pub fn round<R: Rng>(
        &mut self,
        peers: &[Candidate],
        seeding: bool,
        rng: &mut R,
    ) -> HashSet<PeerKey> {
        let rates = self.window(peers, seeding);
        let mut ranked: Vec<&Candidate> = peers
            .iter()
            .filter(|c| c.interested && !c.snubbed)
            .collect();
        // Highest rate first; the sort is stable, so equal rates keep the session's order.
        ranked.sort_by_key(|c| std::cmp::Reverse(rates.get(&c.key).copied().unwrap_or(0)));
        let mut out: HashSet<PeerKey> = ranked.iter().take(SLOTS).map(|c| c.key).collect();
        let still_there = self
            .optimistic
            .is_some_and(|k| peers.iter().any(|c| c.key == k && c.interested));
        if self.round % OPTIMISTIC_EVERY == 0 || !still_there {
            self.optimistic = pick_optimistic(peers, &out, rng);
        }
        self.round = self.round.wrapping_add(1);
        if let Some(k) = self.optimistic {
            out.insert(k);
        }
        out
    }

    /// Bytes each peer moved over the window, and this round's counts recorded. Peers gone are
    /// forgotten; a peer seen for less than the window (or since we began seeding) counts from its
    /// connection.
    fn window(&mut self, peers: &[Candidate], seeding: bool) -> HashMap<PeerKey, u64> {
        if seeding != self.seeding {
            self.history.clear();
            self.seeding = seeding;
        }
        self.history
            .retain(|k, _| peers.iter().any(|c| c.key == *k));
        let mut rates = HashMap::with_capacity(peers.len());
        for c in peers {
            let past = self.history.entry(c.key).or_default();
            let since = if past.len() >= WINDOW_ROUNDS {
                past.front().copied().unwrap_or(0)
            } else {
                0
            };
            rates.insert(c.key, c.bytes.saturating_sub(since));
            past.push_back(c.bytes);
            while past.len() > WINDOW_ROUNDS {
                past.pop_front();
            }
        }
        rates
    }
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
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn c(key: PeerKey, bytes: u64) -> Candidate {
        Candidate {
            key,
            interested: true,
            bytes,
            snubbed: false,
            new: false,
        }
    }

    #[test]
    fn best_four_by_rate_plus_one_optimistic() {
        let peers: Vec<Candidate> = (1..=8).map(|k| c(k, k)).collect();
        let mut ch = Choker::default();
        let got = ch.round(&peers, false, &mut StdRng::seed_from_u64(1));
        assert_eq!(got.len(), 5);
        for k in [5, 6, 7, 8] {
            assert!(got.contains(&k));
        }
    }

    #[test]
    fn uninterested_and_snubbed_peers_get_no_regular_slot() {
        let mut peers: Vec<Candidate> = (1..=3).map(|k| c(k, 100 * k)).collect();
        peers[2].snubbed = true;
        peers[1].interested = false;
        let mut ch = Choker::default();
        let got = ch.round(&peers, false, &mut StdRng::seed_from_u64(1));
        assert!(got.contains(&1));
        assert!(!got.contains(&2), "not interested");
        // The snubbed one can only come back as the optimistic unchoke.
        assert!(got.len() <= 2);
    }

    #[test]
    fn optimistic_slot_rotates_every_third_round_and_favours_new_peers() {
        let mut peers: Vec<Candidate> = (1..=4).map(|k| c(k, 1000)).collect();
        peers.extend((5..=24).map(|k| Candidate {
            new: k == 5,
            ..c(k, 0)
        }));
        let mut rng = StdRng::seed_from_u64(3);
        let mut ch = Choker::default();
        let mut picks = Vec::new();
        for _ in 0..3000 {
            let got = ch.round(&peers, false, &mut rng);
            let opt: Vec<PeerKey> = got.into_iter().filter(|k| *k > 4).collect();
            assert_eq!(opt.len(), 1);
            picks.push(opt[0]);
        }
        // Same optimistic peer within a 3-round window.
        for w in picks.chunks(3) {
            assert!(w.iter().all(|k| *k == w[0]));
        }
        let new_share = picks.iter().filter(|k| **k == 5).count() as f64 / picks.len() as f64;
        // Weight 3 among 22 → ~14%, against ~4.5% for any other.
        assert!(new_share > 0.09, "new peer share {new_share}");
    }

    #[test]
    fn nobody_interested_nobody_unchoked() {
        let mut ch = Choker::default();
        let peers = vec![Candidate {
            interested: false,
            ..c(1, 5)
        }];
        assert!(ch
            .round(&peers, false, &mut StdRng::seed_from_u64(1))
            .is_empty());
    }

    /// One round's window over peers 0.. with these byte counts: the `SLOTS` best by rate (ties
    /// by key), sorted.
    fn top(ch: &mut Choker, counts: &[u64], seeding: bool) -> Vec<PeerKey> {
        let peers: Vec<Candidate> = counts
            .iter()
            .enumerate()
            .map(|(k, &b)| c(k as PeerKey, b))
            .collect();
        let rates = ch.window(&peers, seeding);
        let mut keys: Vec<PeerKey> = peers.iter().map(|p| p.key).collect();
        keys.sort_by_key(|k| (std::cmp::Reverse(rates[k]), *k));
        keys.truncate(SLOTS);
        keys.sort();
        keys
    }

    #[test]
    fn rates_are_over_the_last_two_rounds_not_since_the_start() {
        let mut ch = Choker::default();
        // Peers 0-3 sent 10 MB in a burst before the first round, then nothing; peers 4-7 send
        // 1 MB every round.
        let mut counts = vec![
            10_000_000u64,
            10_000_000,
            10_000_000,
            10_000_000,
            0,
            0,
            0,
            0,
        ];
        let mut tops = Vec::new();
        for _ in 0..4 {
            for n in &mut counts[4..8] {
                *n += 1_000_000;
            }
            tops.push(top(&mut ch, &counts, false));
        }
        assert_eq!(tops[0], vec![0, 1, 2, 3], "at first the burst counts");
        assert_eq!(
            tops[3],
            vec![4, 5, 6, 7],
            "two rounds on, only the steady peers moved bytes"
        );
    }

    #[test]
    fn a_new_peer_counts_from_its_connection_and_a_gone_peer_is_forgotten() {
        let mut ch = Choker::default();
        let peers = |counts: &[(PeerKey, u64)]| -> Vec<Candidate> {
            counts.iter().map(|&(k, b)| c(k, b)).collect()
        };
        ch.window(&peers(&[(1, 100), (2, 100)]), false);
        ch.window(&peers(&[(1, 200), (2, 200)]), false);
        let r = ch.window(&peers(&[(1, 300), (3, 5_000)]), false);
        assert_eq!(r[&1], 200, "300 now, 100 two rounds ago");
        assert_eq!(r[&3], 5_000, "new: everything since it connected");
        assert!(!ch.history.contains_key(&2), "gone peers leave no history");
    }

    #[test]
    fn the_window_starts_again_when_we_begin_to_seed() {
        let mut ch = Choker::default();
        for n in 1..=3 {
            ch.window(&[c(1, n * 1_000)], false);
        }
        // Now the counts are our upload to it: 50 so far.
        let r = ch.window(&[c(1, 50)], true);
        assert_eq!(r[&1], 50);
        let r = ch.window(&[c(1, 80)], true);
        assert_eq!(r[&1], 80);
        let r = ch.window(&[c(1, 100)], true);
        assert_eq!(r[&1], 50, "100 now, 50 two rounds ago");
    }
}
