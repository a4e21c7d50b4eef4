//! The choker's rules one at a time on a handful of peers: tit-for-tat's window and slots, the
//! optimistic slot, and the seeding round robin's turns (a minute and a quota, the longest waiting
//! first, idle holders yielding, fresh turns kept). [`scale`] runs them at 1,000 peers.

use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

mod scale;

fn c(key: PeerKey, bytes: u64) -> Candidate {
    Candidate {
        key,
        interested: true,
        bytes,
        snubbed: false,
        new: false,
    }
}

/// The time of round `n`, rounds [`ROUND`] apart from `t0`.
fn at(t0: Instant, n: u32) -> Instant {
    t0 + ROUND * n
}

/// The regular slots of a round's answer: all but the optimistic one.
fn regular(ch: &Choker, out: &HashSet<PeerKey>) -> Vec<PeerKey> {
    let mut keys: Vec<PeerKey> = out
        .iter()
        .copied()
        .filter(|k| Some(*k) != ch.optimistic)
        .collect();
    keys.sort_unstable();
    keys
}

#[test]
fn best_four_by_rate_plus_one_optimistic() {
    let peers: Vec<Candidate> = (1..=8).map(|k| c(k, k)).collect();
    let mut ch = Choker::default();
    let now = Instant::now();
    let got = ch.round(
        &peers,
        Mode::Downloading,
        now,
        &mut StdRng::seed_from_u64(1),
    );
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
    let now = Instant::now();
    let got = ch.round(
        &peers,
        Mode::Downloading,
        now,
        &mut StdRng::seed_from_u64(1),
    );
    assert!(got.contains(&1));
    assert!(!got.contains(&2), "not interested");
    // The snubbed one can only come back as the optimistic unchoke.
    assert!(got.len() <= 2);
    assert_eq!(regular(&ch, &got), vec![1]);
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
    let t0 = Instant::now();
    let mut picks = Vec::new();
    for n in 0..3000 {
        let got = ch.round(&peers, Mode::Downloading, at(t0, n), &mut rng);
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
fn an_optimistic_peer_promoted_to_a_regular_slot_is_replaced_at_once() {
    let mut peers: Vec<Candidate> = (1..=6).map(|k| c(k, 10 * k)).collect();
    peers[0].bytes = 0; // peer 1 is the slowest: outside the top four
    let mut rng = StdRng::seed_from_u64(5);
    let mut ch = Choker::default();
    let t0 = Instant::now();
    let first = ch.round(&peers, Mode::Downloading, t0, &mut rng);
    assert_eq!(first.len(), 5);
    let opt = ch.optimistic.unwrap();
    // The optimistic peer becomes the fastest; another one takes its optimistic slot.
    peers.iter_mut().find(|p| p.key == opt).unwrap().bytes = 1_000_000;
    let second = ch.round(&peers, Mode::Downloading, at(t0, 1), &mut rng);
    assert_eq!(
        second.len(),
        5,
        "four regular slots and a new optimistic one"
    );
    assert!(regular(&ch, &second).contains(&opt));
    assert_ne!(ch.optimistic, Some(opt));
}

#[test]
fn nobody_interested_nobody_unchoked() {
    let mut ch = Choker::default();
    let peers = vec![Candidate {
        interested: false,
        ..c(1, 5)
    }];
    let now = Instant::now();
    for mode in [Mode::Downloading, Mode::Seeding { piece_len: 1 }] {
        assert!(ch
            .round(&peers, mode, now, &mut StdRng::seed_from_u64(1))
            .is_empty());
    }
}

/// One round's window over peers 0.. with these byte counts: the `SLOTS` best by rate (ties
/// by key), sorted.
fn top(ch: &mut Choker, counts: &[u64], seeding: bool) -> Vec<PeerKey> {
    let peers: Vec<Candidate> = counts
        .iter()
        .enumerate()
        .map(|(k, &b)| c(k as PeerKey, b))
        .collect();
    let rates = ch.window(&peers, seeding, Instant::now());
    let mut keys: Vec<PeerKey> = peers.iter().map(|p| p.key).collect();
    keys.sort_by_key(|k| (Reverse(rates[k]), *k));
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
    let now = Instant::now();
    ch.window(&peers(&[(1, 100), (2, 100)]), false, now);
    ch.window(&peers(&[(1, 200), (2, 200)]), false, now);
    let r = ch.window(&peers(&[(1, 300), (3, 5_000)]), false, now);
    assert_eq!(r[&1], 200, "300 now, 100 two rounds ago");
    assert_eq!(r[&3], 5_000, "new: everything since it connected");
    assert!(!ch.seen.contains_key(&2), "gone peers leave no history");
}

#[test]
fn the_window_starts_again_when_we_begin_to_seed() {
    let mut ch = Choker::default();
    let now = Instant::now();
    for n in 1..=3 {
        ch.window(&[c(1, n * 1_000)], false, now);
    }
    // Now the counts are our upload to it: 50 so far.
    let r = ch.window(&[c(1, 50)], true, now);
    assert_eq!(r[&1], 50);
    assert_eq!(ch.seen[&1].at_unchoke, 50, "the quota counts from here");
    let r = ch.window(&[c(1, 80)], true, now);
    assert_eq!(r[&1], 80);
    let r = ch.window(&[c(1, 100)], true, now);
    assert_eq!(r[&1], 50, "100 now, 50 two rounds ago");
}

/// A seeding run: `n` interested peers 0.., piece length 1,000 (quota 20,000); every round each
/// unchoked peer receives `per_round` bytes. Returns each round's regular slots.
fn seed_run(n: PeerKey, rounds: u32, per_round: u64, start: u64) -> Vec<Vec<PeerKey>> {
    let mode = Mode::Seeding { piece_len: 1_000 };
    let mut peers: Vec<Candidate> = (0..n).map(|k| c(k, start)).collect();
    let mut rng = StdRng::seed_from_u64(9);
    let mut ch = Choker::default();
    let t0 = Instant::now();
    let mut out = Vec::new();
    for r in 0..rounds {
        let got = ch.round(&peers, mode, at(t0, r), &mut rng);
        assert_eq!(got.len(), SLOTS + 1);
        out.push(regular(&ch, &got));
        for p in &mut peers {
            if got.contains(&p.key) {
                p.bytes += per_round;
            }
        }
    }
    out
}

#[test]
fn a_seeding_turn_lasts_a_minute_even_past_its_quota_then_the_longest_waiting_take_over() {
    // 5,000 a round: the quota is in after 4 rounds, the minute after 6.
    let slots = seed_run(8, 7, 5_000, 0);
    for (r, s) in slots.iter().enumerate().take(6) {
        assert_eq!(
            s,
            &vec![0, 1, 2, 3],
            "round {r}: first seen first, ties by key"
        );
    }
    assert_eq!(
        slots[6],
        vec![4, 5, 6, 7],
        "turns used up: the others' turn"
    );
}

#[test]
fn the_quota_counts_from_the_unchoke_not_from_the_connection() {
    // 2,000 a round: the quota of 20,000 is in after 10 rounds, although each peer had received
    // 50,000 before (an earlier turn, allowed-fast pieces).
    let slots = seed_run(6, 11, 2_000, 50_000);
    for (r, s) in slots.iter().enumerate().take(10) {
        assert_eq!(s, &vec![0, 1, 2, 3], "round {r}: quota not in yet");
    }
    assert!(slots[10].contains(&4) && slots[10].contains(&5));
}

#[test]
fn a_turn_short_of_its_quota_ends_after_turn_max() {
    let max_rounds = (TURN_MAX.as_secs() / ROUND.as_secs()) as u32;
    let slots = seed_run(6, max_rounds + 1, 1, 0);
    for (r, s) in slots.iter().enumerate().take(max_rounds as usize) {
        assert_eq!(s, &vec![0, 1, 2, 3], "round {r}");
    }
    let last = &slots[max_rounds as usize];
    assert!(last.contains(&4) && last.contains(&5), "{last:?}");
}

#[test]
fn a_slot_holder_that_moves_nothing_yields_to_the_longest_waiting() {
    let mode = Mode::Seeding { piece_len: 1_000 };
    let mut peers: Vec<Candidate> = (0..6)
        .map(|k| Candidate {
            interested: false,
            ..c(k, 0)
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(2);
    let mut ch = Choker::default();
    let t0 = Instant::now();
    assert!(ch.round(&peers, mode, t0, &mut rng).is_empty());
    for p in &mut peers[..4] {
        p.interested = true;
    }
    let got = ch.round(&peers, mode, at(t0, 1), &mut rng);
    assert_eq!(regular(&ch, &got), vec![0, 1, 2, 3]);
    // Everyone unchoked downloads but peer 2; peers 4 and 5, waiting since t0, want in.
    for p in &mut peers {
        if got.contains(&p.key) && p.key != 2 {
            p.bytes += 5_000;
        }
        p.interested = true;
    }
    let got = ch.round(&peers, mode, at(t0, 2), &mut rng);
    assert_eq!(
        regular(&ch, &got),
        vec![0, 1, 3, 4],
        "peer 4 waited longest"
    );
    assert_eq!(ch.optimistic, Some(5), "peer 5 waited longer than peer 2");
    assert!(!got.contains(&2));
}

#[test]
fn a_turn_begun_in_an_early_round_is_kept_until_it_is_a_round_old() {
    let mode = Mode::Seeding { piece_len: 1_000 };
    let mut peers: Vec<Candidate> = (0..5)
        .map(|k| Candidate {
            interested: false,
            ..c(k, 0)
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(4);
    let mut ch = Choker::default();
    let t0 = Instant::now();
    assert!(ch.round(&peers, mode, t0, &mut rng).is_empty());
    for p in &mut peers[..4] {
        p.interested = true;
    }
    let got = ch.round(&peers, mode, at(t0, 1), &mut rng);
    assert_eq!(regular(&ch, &got), vec![0, 1, 2, 3]);
    // A second later peer 4, waiting since t0, becomes interested (an early round); nothing has
    // reached the others yet.
    peers[4].interested = true;
    let early = at(t0, 1) + Duration::from_secs(1);
    let got = ch.round(&peers, mode, early, &mut rng);
    assert_eq!(regular(&ch, &got), vec![0, 1, 2, 3]);
    assert_eq!(ch.optimistic, Some(4));
}

#[test]
fn a_peer_that_loses_interest_loses_its_turn_and_waits_from_then() {
    let mode = Mode::Seeding { piece_len: 1_000 };
    let mut peers: Vec<Candidate> = (0..6).map(|k| c(k, 0)).collect();
    let mut rng = StdRng::seed_from_u64(6);
    let mut ch = Choker::default();
    let t0 = Instant::now();
    ch.round(&peers, mode, t0, &mut rng);
    peers[1].interested = false;
    let got = ch.round(&peers, mode, at(t0, 1), &mut rng);
    assert!(!got.contains(&1));
    assert!(!ch.seen[&1].unchoked);
    assert_eq!(ch.seen[&1].since, at(t0, 1), "its wait starts at the choke");
}
