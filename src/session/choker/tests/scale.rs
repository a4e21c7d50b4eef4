//! The choker at 1,000 peers (issue 17): tit-for-tat against a brute-force ranking of the windowed
//! rates through joins, departures, interest changes and snubs; the optimistic slot's rotation; the
//! seeding round robin's fairness (nobody unchoked twice before everyone once, within a bounded
//! number of rounds) and its slot counts under churn. Correctness only, no timing.

use super::*;
use std::collections::BTreeMap;

const PEERS: u64 = 1_000;

/// One peer of a simulated swarm, with the oracle's own record of its byte counts.
struct Sim {
    c: Candidate,
    /// Its byte count at each round since it joined, this round's not yet included.
    counts: Vec<u64>,
}

impl Sim {
    fn new(key: PeerKey, interested: bool) -> Sim {
        Sim {
            c: Candidate {
                key,
                interested,
                bytes: 0,
                snubbed: false,
                new: true,
            },
            counts: Vec::new(),
        }
    }

    /// The windowed rate computed independently: the bytes since [`WINDOW_ROUNDS`] rounds ago,
    /// or since it joined.
    fn rate(&self) -> u64 {
        let n = self.counts.len();
        let past = if n >= WINDOW_ROUNDS {
            self.counts[n - WINDOW_ROUNDS]
        } else {
            0
        };
        self.c.bytes - past
    }
}

fn candidates(sims: &BTreeMap<PeerKey, Sim>) -> Vec<Candidate> {
    sims.values().map(|s| s.c.clone()).collect()
}

/// Per round: 1% leave, as many join; 2% change interest; 1% change snub; everyone moves a random
/// count of bytes (distinct enough that ranks rarely tie).
fn churn(sims: &mut BTreeMap<PeerKey, Sim>, next: &mut PeerKey, rng: &mut StdRng) {
    for _ in 0..PEERS / 100 {
        let keys: Vec<PeerKey> = sims.keys().copied().collect();
        sims.remove(&keys[rng.random_range(0..keys.len())]);
        sims.insert(*next, Sim::new(*next, rng.random_bool(0.8)));
        *next += 1;
    }
    for s in sims.values_mut() {
        if rng.random_bool(0.02) {
            s.c.interested = !s.c.interested;
        }
        if rng.random_bool(0.01) {
            s.c.snubbed = !s.c.snubbed;
        }
        s.c.bytes += rng.random_range(0..1_000_000);
    }
}

#[test]
fn tit_for_tat_at_1000_peers_unchokes_the_true_top_four_and_one_optimistic() {
    let mut rng = StdRng::seed_from_u64(17);
    let mut sims: BTreeMap<PeerKey, Sim> = (0..PEERS)
        .map(|k| (k, Sim::new(k, rng.random_bool(0.8))))
        .collect();
    let mut next = PEERS;
    let mut ch = Choker::default();
    let t0 = Instant::now();
    let mut optimistic = Vec::new();
    for r in 0..300 {
        churn(&mut sims, &mut next, &mut rng);
        if r == 30 {
            for s in sims.values_mut() {
                s.c.new = false;
            }
        }
        let before = ch.optimistic;
        let got = ch.round(&candidates(&sims), Mode::Downloading, at(t0, r), &mut rng);
        assert_eq!(got.len(), SLOTS + 1, "round {r}");
        assert!(got.iter().all(|k| sims[k].c.interested), "round {r}");
        let opt = ch.optimistic.unwrap();
        let slots = regular(&ch, &got);
        assert_eq!(
            slots.len(),
            SLOTS,
            "the optimistic peer is not a regular one"
        );
        assert!(slots.iter().all(|k| !sims[k].c.snubbed), "round {r}");
        // The true top four: no eligible peer left out moved more than one let in.
        let slowest_in = slots.iter().map(|k| sims[k].rate()).min().unwrap();
        let fastest_out = sims
            .values()
            .filter(|s| s.c.interested && !s.c.snubbed && !slots.contains(&s.c.key))
            .map(Sim::rate)
            .max()
            .unwrap();
        assert!(
            slowest_in >= fastest_out,
            "round {r}: {slowest_in} < {fastest_out}"
        );
        // The optimistic peer changes every third round, or when its holder is gone.
        if r % OPTIMISTIC_EVERY != 0 && before.is_some_and(|b| sims.contains_key(&b)) {
            let b = before.unwrap();
            if sims[&b].c.interested && !slots.contains(&b) {
                assert_eq!(opt, b, "round {r}");
            }
        }
        optimistic.push(opt);
        for s in sims.values_mut() {
            s.counts.push(s.c.bytes);
        }
    }
    optimistic.dedup();
    let distinct: HashSet<PeerKey> = optimistic.iter().copied().collect();
    assert!(
        optimistic.len() >= 100,
        "rotated {} times",
        optimistic.len()
    );
    assert!(distinct.len() >= 90, "over {} peers", distinct.len());
}

/// Rounds a seeding turn lasts when the quota comes in sooner: [`TURN_MIN`] in rounds.
fn turn_rounds() -> u32 {
    (TURN_MIN.as_secs() / ROUND.as_secs()) as u32
}

#[test]
fn round_robin_at_1000_peers_unchokes_nobody_twice_before_everybody_once() {
    let mode = Mode::Seeding { piece_len: 16_384 };
    let per_round = 16_384 * QUOTA_PIECES / 2;
    let mut peers: Vec<Candidate> = (0..PEERS)
        .map(|k| Candidate {
            key: k,
            interested: true,
            bytes: 0,
            snubbed: false,
            new: true,
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(1);
    let mut ch = Choker::default();
    let t0 = Instant::now();
    // Unchoke episodes per peer, and the round each peer was first unchoked.
    let mut episodes = vec![0u32; PEERS as usize];
    let mut first = vec![None; PEERS as usize];
    let mut last: HashSet<PeerKey> = HashSet::new();
    let bound = turn_rounds() * (PEERS as u32).div_ceil(SLOTS as u32);
    let mut r = 0;
    while first.iter().any(Option::is_none) {
        assert!(r <= bound, "round {r}: some peers still never unchoked");
        let got = ch.round(&peers, mode, at(t0, r), &mut rng);
        assert_eq!(got.len(), SLOTS + 1, "round {r}");
        for &k in got.difference(&last) {
            let i = k as usize;
            episodes[i] += 1;
            first[i].get_or_insert(r);
            if episodes[i] > 1 {
                let waiting = first.iter().filter(|f| f.is_none()).count();
                assert_eq!(
                    waiting, 0,
                    "round {r}: peer {k} again before {waiting} others"
                );
            }
        }
        for p in &mut peers {
            if got.contains(&p.key) {
                p.bytes += per_round;
            }
        }
        last = got;
        r += 1;
    }
    // The order is the queue's: first seen together, so by key within each batch of turns.
    let late = first.iter().flatten().max().unwrap();
    assert!(*late <= bound, "everyone within {bound} rounds");
    eprintln!("1000 peers all unchoked once within {r} rounds (bound {bound})");
}

#[test]
fn round_robin_at_1000_peers_keeps_its_slot_counts_through_churn() {
    let mode = Mode::Seeding { piece_len: 16_384 };
    let mut rng = StdRng::seed_from_u64(2);
    let mut sims: BTreeMap<PeerKey, Sim> = (0..PEERS)
        .map(|k| (k, Sim::new(k, rng.random_bool(0.8))))
        .collect();
    let mut next = PEERS;
    let mut ch = Choker::default();
    let t0 = Instant::now();
    let mut picks: Vec<PeerKey> = Vec::new();
    let mut opt_before: HashSet<PeerKey> = HashSet::new();
    let mut last: HashSet<PeerKey> = HashSet::new();
    for r in 0..400 {
        // Only unchoked peers receive anything (and a few get nothing: idle holders).
        churn(&mut sims, &mut next, &mut rng);
        for s in sims.values_mut() {
            if !last.contains(&s.c.key) {
                s.c.bytes = s.counts.last().copied().unwrap_or(0);
            }
        }
        let before = ch.optimistic;
        let got = ch.round(&candidates(&sims), mode, at(t0, r), &mut rng);
        let interested = sims.values().filter(|s| s.c.interested).count();
        assert_eq!(got.len(), interested.min(SLOTS + 1), "round {r}");
        assert!(got.iter().all(|k| sims[k].c.interested), "round {r}");
        assert_eq!(regular(&ch, &got).len(), SLOTS, "round {r}");
        // A new optimistic pick is a choked peer never picked before while there is one.
        if let Some(opt) = ch.optimistic.filter(|o| before != Some(*o)) {
            let fresh = |k: &PeerKey| !opt_before.contains(k) && !last.contains(k);
            let any_fresh = sims
                .values()
                .any(|s| s.c.interested && fresh(&s.c.key) && !got.contains(&s.c.key));
            assert!(fresh(&opt) || !any_fresh, "round {r}: {opt} picked again");
            opt_before.insert(opt);
            picks.push(opt);
        }
        for s in sims.values_mut() {
            s.counts.push(s.c.bytes);
        }
        last = got;
    }
    let distinct: HashSet<PeerKey> = picks.iter().copied().collect();
    assert!(picks.len() >= 130, "{} picks", picks.len());
    assert_eq!(
        distinct.len(),
        picks.len(),
        "no repeat while fresh peers wait"
    );
}
