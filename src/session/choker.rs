//! Who we upload to: every round (10 s) the best 4 interested peers by rate unchoked — their upload to
//! us while we download, ours to them once we seed — and every third round one more, optimistic, slot
//! rotated at random, new peers three times as likely. Snubbed peers lose their slot. Pure: the
//! session's timer calls [`Choker::round`].

use std::collections::HashSet;

use rand::Rng;

use crate::picker::PeerKey;

/// Regular unchoke slots.
pub const SLOTS: usize = 4;
/// Rounds between optimistic rotations (3 × 10 s = 30 s).
pub const OPTIMISTIC_EVERY: u32 = 3;

/// One peer as the choker sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The peer.
    pub key: PeerKey,
    /// Whether it wants our data.
    pub interested: bool,
    /// The rate that ranks it (bytes/s).
    pub rate: f64,
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
}

impl Choker {
    /// One round: the set of peers to have unchoked now.
    pub fn round<R: Rng>(&mut self, peers: &[Candidate], rng: &mut R) -> HashSet<PeerKey> {
        let mut ranked: Vec<&Candidate> = peers
            .iter()
            .filter(|c| c.interested && !c.snubbed)
            .collect();
        ranked.sort_by(|a, b| b.rate.total_cmp(&a.rate));
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

    fn c(key: PeerKey, rate: f64) -> Candidate {
        Candidate {
            key,
            interested: true,
            rate,
            snubbed: false,
            new: false,
        }
    }

    #[test]
    fn best_four_by_rate_plus_one_optimistic() {
        let peers: Vec<Candidate> = (1..=8).map(|k| c(k, k as f64)).collect();
        let mut ch = Choker::default();
        let got = ch.round(&peers, &mut StdRng::seed_from_u64(1));
        assert_eq!(got.len(), 5);
        for k in [5, 6, 7, 8] {
            assert!(got.contains(&k));
        }
    }

    #[test]
    fn uninterested_and_snubbed_peers_get_no_regular_slot() {
        let mut peers: Vec<Candidate> = (1..=3).map(|k| c(k, 100.0 * k as f64)).collect();
        peers[2].snubbed = true;
        peers[1].interested = false;
        let mut ch = Choker::default();
        let got = ch.round(&peers, &mut StdRng::seed_from_u64(1));
        assert!(got.contains(&1));
        assert!(!got.contains(&2), "not interested");
        // The snubbed one can only come back as the optimistic unchoke.
        assert!(got.len() <= 2);
    }

    #[test]
    fn optimistic_slot_rotates_every_third_round_and_favours_new_peers() {
        let mut peers: Vec<Candidate> = (1..=4).map(|k| c(k, 1000.0)).collect();
        peers.extend((5..=24).map(|k| Candidate {
            new: k == 5,
            ..c(k, 0.0)
        }));
        let mut rng = StdRng::seed_from_u64(3);
        let mut ch = Choker::default();
        let mut picks = Vec::new();
        for _ in 0..3000 {
            let got = ch.round(&peers, &mut rng);
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
            ..c(1, 5.0)
        }];
        assert!(ch.round(&peers, &mut StdRng::seed_from_u64(1)).is_empty());
    }
}
