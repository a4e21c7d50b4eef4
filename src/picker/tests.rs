//! Unit tests of the picker: piece orders, reservations, choke returns, endgame, failed pieces.

use super::*;
use crate::types::BLOCK_LEN;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// 8 pieces of 2 blocks, the last piece one short block.
fn lengths() -> Lengths {
    Lengths::new(7 * 2 * u64::from(BLOCK_LEN) + 100, 2 * BLOCK_LEN).unwrap()
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn bits(n: u32, set: &[u32]) -> Bitfield {
    let mut b = Bitfield::new(n);
    for &i in set {
        b.set(i);
    }
    b
}

fn with_have(strategy: Strategy, have: &[u32]) -> Picker {
    Picker::new(lengths(), strategy, bits(8, have), 100)
}

fn pieces_of(blocks: &[BlockRef]) -> Vec<u32> {
    let mut v: Vec<u32> = blocks.iter().map(|b| b.piece.get()).collect();
    v.dedup();
    v
}

#[test]
fn rarest_first_after_the_random_start() {
    // Four pieces already verified, so rarest-first is in force.
    let mut p = with_have(Strategy::Rarest, &[0, 1, 2, 3]);
    p.add_peer(&bits(8, &[4, 5, 6, 7]));
    p.add_peer(&bits(8, &[4, 5, 7]));
    p.add_peer(&bits(8, &[5, 7]));
    // availability: 4→2, 5→3, 6→1, 7→3
    let got = p.pick(1, &Bitfield::full(8), 2, &mut rng());
    assert_eq!(pieces_of(&got), vec![6]);
    let got = p.pick(1, &Bitfield::full(8), 2, &mut rng());
    assert_eq!(pieces_of(&got), vec![4]);
    let got = p.pick(1, &Bitfield::full(8), 4, &mut rng());
    assert_eq!(got.len(), 3, "last piece has one block");
    let mut ps = pieces_of(&got);
    ps.sort();
    assert_eq!(ps, vec![5, 7]);
}

#[test]
fn rarest_ties_are_broken_at_random() {
    let mut seen = std::collections::HashSet::new();
    for seed in 0..40 {
        let mut p = with_have(Strategy::Rarest, &[0, 1, 2, 3]);
        let got = p.pick(1, &Bitfield::full(8), 1, &mut StdRng::seed_from_u64(seed));
        seen.insert(got[0].piece.get());
    }
    assert!(seen.len() >= 3, "ties spread over pieces: {seen:?}");
}

#[test]
fn first_pieces_are_random_not_rarest() {
    let mut seen = std::collections::HashSet::new();
    for seed in 0..40 {
        let mut p = with_have(Strategy::Rarest, &[]);
        p.add_peer(&bits(8, &[0])); // piece 0 is the most common; the others tie
        p.add_peer(&Bitfield::full(8));
        let got = p.pick(1, &Bitfield::full(8), 1, &mut StdRng::seed_from_u64(seed));
        seen.insert(got[0].piece.get());
    }
    assert!(seen.len() > 2, "random start: {seen:?}");
}

#[test]
fn sequential_goes_in_order_and_random_covers_everything() {
    let mut p = with_have(Strategy::Sequential, &[1]);
    let got = p.pick(1, &Bitfield::full(8), 6, &mut rng());
    assert_eq!(pieces_of(&got), vec![0, 2, 3]);
    let mut p = with_have(Strategy::Random, &[]);
    let got = p.pick(1, &Bitfield::full(8), 100, &mut rng());
    assert_eq!(got.len(), 15);
    let mut ps = pieces_of(&got);
    ps.sort();
    ps.dedup();
    assert_eq!(ps, (0..8).collect::<Vec<_>>());
}

#[test]
fn a_peer_with_nothing_gets_nothing_and_one_with_everything_gets_all() {
    let mut p = with_have(Strategy::Rarest, &[]);
    assert!(p.pick(1, &Bitfield::new(8), 10, &mut rng()).is_empty());
    assert!(!p.wants_any(&Bitfield::new(8)));
    assert!(p.wants_any(&Bitfield::full(8)));
    let got = p.pick(2, &Bitfield::full(8), 1000, &mut rng());
    assert_eq!(got.len(), 15, "7 pieces × 2 blocks + 1 short block");
    let last = got.iter().find(|b| b.piece.get() == 7).unwrap();
    assert_eq!(last.len, 100);
    // Nothing is left to hand out but endgame duplicates, and those never to the same peer.
    assert!(p.in_endgame());
    assert!(p.pick(2, &Bitfield::full(8), 10, &mut rng()).is_empty());
}

#[test]
fn a_peer_finishes_its_own_pieces_before_starting_new_ones() {
    let mut p = with_have(Strategy::Sequential, &[]);
    let first = p.pick(1, &Bitfield::full(8), 1, &mut rng());
    assert_eq!(first[0].piece.get(), 0);
    let next = p.pick(1, &Bitfield::full(8), 1, &mut rng());
    assert_eq!((next[0].piece.get(), next[0].offset), (0, BLOCK_LEN));
    // Another peer starts its own piece rather than squeezing into piece 0.
    let other = p.pick(2, &Bitfield::full(8), 1, &mut rng());
    assert_eq!(other[0].piece.get(), 1);
}

#[test]
fn partial_pieces_are_joined_when_no_new_piece_may_start() {
    let mut p = Picker::new(lengths(), Strategy::Sequential, Bitfield::new(8), 1);
    let a = p.pick(1, &Bitfield::full(8), 1, &mut rng());
    let b = p.pick(2, &Bitfield::full(8), 5, &mut rng());
    assert_eq!(a[0].piece.get(), 0);
    assert_eq!(b.len(), 1, "only piece 0's second block may go out");
    assert_eq!((b[0].piece.get(), b[0].offset), (0, BLOCK_LEN));
}

#[test]
fn choke_returns_blocks_to_the_pool() {
    let mut p = with_have(Strategy::Sequential, &[]);
    let got = p.pick(1, &Bitfield::full(8), 3, &mut rng());
    assert_eq!(got.len(), 3);
    for b in &got {
        p.unrequest(1, *b);
    }
    // All of them go out again, in the same order, to another peer.
    let again = p.pick(2, &Bitfield::full(8), 3, &mut rng());
    assert_eq!(again, got);
}

#[test]
fn received_blocks_complete_a_piece_once() {
    let mut p = with_have(Strategy::Sequential, &[]);
    let got = p.pick(1, &Bitfield::full(8), 2, &mut rng());
    assert_eq!(
        p.received(1, got[0]),
        Receipt::Useful {
            complete: false,
            cancel: vec![]
        }
    );
    assert_eq!(p.received(1, got[0]), Receipt::Useless, "duplicate");
    assert_eq!(
        p.received(1, got[1]),
        Receipt::Useful {
            complete: true,
            cancel: vec![]
        }
    );
    assert_eq!(
        p.received(1, got[1]),
        Receipt::Useless,
        "piece is being verified"
    );
    let piece = got[0].piece;
    p.verified(piece, true);
    assert!(p.have().get(0));
    assert_eq!(p.left(), lengths().total() - 2 * u64::from(BLOCK_LEN));
}

#[test]
fn a_block_nobody_requested_is_still_useful_for_an_active_piece() {
    let mut p = with_have(Strategy::Sequential, &[]);
    let got = p.pick(1, &Bitfield::full(8), 1, &mut rng());
    let second = lengths().block(got[0].piece, 1).unwrap();
    assert!(matches!(p.received(2, second), Receipt::Useful { .. }));
    // A block of a piece nobody is fetching is dropped.
    let far = lengths().block(lengths().piece(5).unwrap(), 0).unwrap();
    assert_eq!(p.received(2, far), Receipt::Useless);
}

#[test]
fn endgame_duplicates_then_cancels() {
    let mut p = with_have(Strategy::Sequential, &[0, 1, 2, 3, 4, 5, 6]);
    let a = p.pick(1, &Bitfield::full(8), 10, &mut rng());
    assert_eq!(a.len(), 1);
    assert!(p.in_endgame());
    let b = p.pick(2, &Bitfield::full(8), 10, &mut rng());
    assert_eq!(b, a, "peer 2 duplicates peer 1's request");
    let c = p.pick(3, &Bitfield::full(8), 10, &mut rng());
    assert_eq!(c, a);
    let d = p.pick(4, &Bitfield::full(8), 10, &mut rng());
    assert!(d.is_empty(), "at most {MAX_ENDGAME_REQUESTERS} requesters");
    assert!(p.wants_block(a[0]));
    assert_eq!(
        p.received(2, a[0]),
        Receipt::Useful {
            complete: true,
            cancel: vec![1, 3]
        }
    );
    assert!(!p.wants_block(a[0]), "the others' copies are moot");
    p.verified(a[0].piece, true);
    assert!(p.is_complete());
}

#[test]
fn not_endgame_while_an_unrequested_piece_remains() {
    let mut p = with_have(Strategy::Sequential, &[0, 1, 2, 3, 4, 5]);
    let a = p.pick(1, &bits(8, &[6]), 10, &mut rng());
    assert_eq!(a.len(), 2);
    assert!(!p.in_endgame(), "piece 7 is still unrequested");
    assert!(p.pick(2, &bits(8, &[6]), 10, &mut rng()).is_empty());
}

#[test]
fn a_failed_piece_goes_back_and_is_fetched_from_one_peer() {
    let mut p = with_have(Strategy::Sequential, &[1, 2, 3, 4, 5, 6, 7]);
    let got = p.pick(1, &Bitfield::full(8), 10, &mut rng());
    for b in &got {
        p.received(1, *b);
    }
    p.verified(got[0].piece, false);
    assert!(!p.have().get(0));
    // Peer 2 takes the first block; peer 3 may not join piece 0 (owner 2) until endgame.
    let two = p.pick(2, &Bitfield::full(8), 1, &mut rng());
    assert_eq!(two.len(), 1);
    let three = p.pick(3, &Bitfield::full(8), 10, &mut rng());
    assert!(three.is_empty());
    // Owner 2 leaves: the piece is free for whoever comes next.
    p.unrequest(2, two[0]);
    let three = p.pick(3, &Bitfield::full(8), 10, &mut rng());
    assert_eq!(three.len(), 2);
}

#[test]
fn availability_follows_peers() {
    let mut p = with_have(Strategy::Rarest, &[]);
    let b = bits(8, &[1, 2]);
    p.add_peer(&b);
    p.add_have(lengths().piece(3).unwrap());
    assert_eq!(p.availability(lengths().piece(1).unwrap()), 1);
    assert_eq!(p.availability(lengths().piece(3).unwrap()), 1);
    p.remove_peer(&b);
    assert_eq!(p.availability(lengths().piece(1).unwrap()), 0);
}

#[test]
fn stale_verification_results_are_ignored() {
    let mut p = with_have(Strategy::Sequential, &[]);
    p.verified(lengths().piece(0).unwrap(), true);
    assert!(!p.have().get(0), "piece 0 was never complete");
}

#[test]
fn a_web_seed_run_extends_through_the_following_missing_pieces() {
    for seed in 0..20 {
        // Pieces 2 and 6 are held: runs stop at them.
        let mut p = with_have(Strategy::Random, &[2, 6]);
        let mut r = StdRng::seed_from_u64(seed);
        let got = p.pick_run(9, &Bitfield::full(8), 6, &mut r);
        let ps = pieces_of(&got);
        assert!(got.len() >= 2, "seed {seed}: {ps:?}");
        // Every piece after the first follows its predecessor unless a held piece broke the run.
        for w in ps.windows(2) {
            assert!(
                w[1] == w[0] + 1
                    || [2, 6].contains(&(w[0] + 1))
                    || w[0] == 7
                    || ps.contains(&(w[0] + 1)),
                "seed {seed}: {ps:?}"
            );
        }
    }
    // Sequential from the start: one run 0..=2 with max 6 blocks.
    let mut p = with_have(Strategy::Sequential, &[]);
    let got = p.pick_run(9, &Bitfield::full(8), 6, &mut rng());
    assert_eq!(pieces_of(&got), vec![0, 1, 2]);
}

#[test]
fn a_web_seed_run_does_not_take_pieces_others_are_fetching() {
    let mut p = with_have(Strategy::Sequential, &[]);
    let peer = p.pick(1, &Bitfield::full(8), 2, &mut rng());
    assert_eq!(pieces_of(&peer), vec![0]);
    let web = p.pick_run(9, &Bitfield::full(8), 4, &mut rng());
    assert_eq!(pieces_of(&web), vec![1, 2]);
    // Plain pick stays random-per-piece: it doesn't chain (checked through the Random strategy).
    let mut chained = 0;
    for seed in 0..30 {
        let mut p = with_have(Strategy::Random, &[]);
        let got = p.pick(1, &Bitfield::full(8), 4, &mut StdRng::seed_from_u64(seed));
        let ps = pieces_of(&got);
        if ps.len() == 2 && ps[1] == ps[0] + 1 {
            chained += 1;
        }
    }
    assert!(chained < 30, "pick is not run-building");
}

#[test]
fn a_web_seed_run_starts_at_the_beginning_of_its_gap() {
    for seed in 0..20 {
        // Gaps: 0..=1 and 3..=5 (2 and 6, 7 held); every start is 0 or 3.
        let mut p = with_have(Strategy::Random, &[2, 6, 7]);
        let got = p.pick_run(9, &Bitfield::full(8), 2, &mut StdRng::seed_from_u64(seed));
        assert!([0, 3].contains(&got[0].piece.get()), "seed {seed}: {got:?}");
    }
    // Rarest first still holds: the walk back stops where availability changes.
    let mut p = with_have(Strategy::Rarest, &[0, 1, 2, 3]);
    p.add_peer(&bits(8, &[4, 5]));
    let got = p.pick_run(9, &Bitfield::full(8), 2, &mut rng());
    assert_eq!(got[0].piece.get(), 6, "6 and 7 are rarer than 4 and 5");
}

#[test]
fn a_web_seed_takes_a_piece_kept_for_it_whole_so_endgame_can_duplicate_it() {
    // Piece 7 failed once; its retry is kept for the web seed that starts it, even past its max.
    let mut p = Picker::new(
        Lengths::new(8 * 3 * u64::from(BLOCK_LEN), 3 * BLOCK_LEN).unwrap(),
        Strategy::Sequential,
        bits(8, &[0, 1, 2, 3, 4, 5, 6]),
        100,
    );
    let all = Bitfield::full(8);
    let first = p.pick(1, &all, 3, &mut rng());
    for b in &first {
        p.received(1, *b);
    }
    p.verified(first[0].piece, false);
    let web = p.pick_run(2, &all, 1, &mut rng());
    assert_eq!(web.len(), 3, "the whole owned piece");
    // If that mirror stalls, another source duplicates its requests.
    let other = p.pick(3, &all, 10, &mut rng());
    assert_eq!(other.len(), 3, "{other:?}");
    // A plain peer keeps its window: it takes one block of a piece kept for it.
    let mut q = Picker::new(
        Lengths::new(8 * 3 * u64::from(BLOCK_LEN), 3 * BLOCK_LEN).unwrap(),
        Strategy::Sequential,
        bits(8, &[0, 1, 2, 3, 4, 5, 6]),
        100,
    );
    let first = q.pick(1, &all, 3, &mut rng());
    for b in &first {
        q.received(1, *b);
    }
    q.verified(first[0].piece, false);
    assert_eq!(q.pick(2, &all, 1, &mut rng()).len(), 1);
}

#[test]
fn a_peer_restricted_to_some_pieces_is_not_given_its_other_pieces_back() {
    // The peer works on piece 4 (one block asked, one rejected and handed back), then chokes us
    // and allows only piece 6 (BEP 6): the rejected block of piece 4 is not offered to it again.
    let mut p = with_have(Strategy::Sequential, &[0, 1, 2, 3]);
    let got = p.pick(1, &bits(8, &[4]), 2, &mut rng());
    assert_eq!(pieces_of(&got), vec![4]);
    p.unrequest(1, got[1]);
    let allowed = p.pick(1, &bits(8, &[6]), 4, &mut rng());
    assert_eq!(pieces_of(&allowed), vec![6], "{allowed:?}");
    // Unchoked again (all it has): the block comes back to it.
    let again = p.pick(1, &bits(8, &[4, 5, 6, 7]), 4, &mut rng());
    assert!(again.contains(&got[1]), "{again:?}");
}

/// Takes and verifies every block `peer` is offered, `max` at a time, until nothing more comes.
fn fetch_all(p: &mut Picker, peer: PeerKey, has: &Bitfield) -> Vec<u32> {
    let mut done = Vec::new();
    for _ in 0..100 {
        let got = p.pick(peer, has, 4, &mut rng());
        if got.is_empty() {
            break;
        }
        for b in got {
            if p.received(peer, b)
                == (Receipt::Useful {
                    complete: true,
                    cancel: vec![],
                })
            {
                p.verified(b.piece, true);
                done.push(b.piece.get());
            }
        }
    }
    done.sort();
    done
}

#[test]
fn a_selection_is_all_that_is_picked_and_all_that_completion_waits_for() {
    for strategy in [Strategy::Rarest, Strategy::Sequential, Strategy::Random] {
        let mut p = with_have(strategy, &[1]).select(&bits(8, &[1, 2, 5, 7]));
        assert_eq!(p.wanted_bytes(), 3 * 2 * u64::from(BLOCK_LEN) + 100);
        assert_eq!(p.left(), 2 * 2 * u64::from(BLOCK_LEN) + 100);
        assert_eq!(p.left_all(), 6 * 2 * u64::from(BLOCK_LEN) + 100);
        assert_eq!(
            p.missing().map(|(i, _)| i).collect::<Vec<_>>(),
            vec![2, 5, 7]
        );
        assert!(!p.wants_any(&bits(8, &[0, 1, 3, 4, 6])), "{strategy:?}");
        assert!(p.wants_any(&bits(8, &[0, 5])));
        assert!(!p.is_complete());
        assert_eq!(fetch_all(&mut p, 1, &Bitfield::full(8)), vec![2, 5, 7]);
        assert!(p.is_complete(), "{strategy:?}");
        assert!(!p.has_all(), "a partial download is not a seed");
        assert_eq!(p.left(), 0);
        assert!(p.pick(2, &Bitfield::full(8), 10, &mut rng()).is_empty());
        assert!(!p.in_endgame() || p.pick(3, &Bitfield::full(8), 10, &mut rng()).is_empty());
    }
}

#[test]
fn a_web_seed_run_skips_unwanted_pieces() {
    for strategy in [Strategy::Rarest, Strategy::Sequential, Strategy::Random] {
        let mut p = with_have(strategy, &[]).select(&bits(8, &[0, 1, 2, 5, 6]));
        let mut got = pieces_of(&p.pick_run(9, &Bitfield::full(8), 100, &mut rng()));
        got.sort();
        assert_eq!(got, vec![0, 1, 2, 5, 6], "{strategy:?}");
    }
}

#[test]
fn a_block_of_an_unwanted_piece_is_useless() {
    let mut p = with_have(Strategy::Rarest, &[]).select(&bits(8, &[0]));
    let block = lengths().block(lengths().piece(3).unwrap(), 0).unwrap();
    assert_eq!(p.received(1, block), Receipt::Useless);
    assert!(!p.wants_block(block));
    p.unrequest(1, block);
    assert_eq!(p.missing().count(), 1);
}

#[test]
fn an_empty_selection_is_complete_at_once() {
    let p = with_have(Strategy::Rarest, &[]).select(&Bitfield::new(8));
    assert!(p.is_complete());
    assert_eq!(p.wanted_bytes(), 0);
    assert!(!p.wants_any(&Bitfield::full(8)));
}

#[test]
fn the_word_walk_over_a_bitfield_finds_the_same_pieces() {
    let mut r = rng();
    for len in [1u32, 7, 8, 9, 63, 64, 65, 100, 1000] {
        for _ in 0..20 {
            let mut b = Bitfield::new(len);
            for i in 0..len {
                if r.random_bool(0.3) {
                    b.set(i);
                }
            }
            assert_eq!(
                avail::ones(&b).collect::<Vec<_>>(),
                b.ones().collect::<Vec<_>>()
            );
        }
        assert_eq!(avail::ones(&Bitfield::full(len)).count(), len as usize);
    }
}

/// How often `rarest` returns each piece over 4,000 draws.
fn rarest_counts(a: &avail::Avail, has: &Bitfield) -> std::collections::HashMap<u32, u32> {
    let mut r = rng();
    let mut seen = std::collections::HashMap::new();
    for _ in 0..4000 {
        *seen.entry(a.rarest(has, &mut r).unwrap()).or_default() += 1;
    }
    seen
}

#[test]
fn rarest_ties_are_uniform_whether_probed_scanned_or_walked() {
    // 1,000 pieces: 20 held by nobody (0..20), the others by one peer.
    let mut a = avail::Avail::new(1000);
    for i in 0..1000 {
        a.insert(i);
        if i >= 20 {
            a.increment(i);
        }
    }
    a.check();
    // Probed: a peer with most pieces, among them every rarest one.
    let dense = bits(
        1000,
        &(0..1000)
            .filter(|i| i % 4 != 1 || *i < 20)
            .collect::<Vec<_>>(),
    );
    // Scanned: 5 of the rarest and 100 others (the group is small next to its pieces).
    let some = bits(
        1000,
        &[0, 3, 7, 11, 19]
            .into_iter()
            .chain(500..600)
            .collect::<Vec<_>>(),
    );
    // Walked: 8 common pieces only, so the rarest group is not worth scanning.
    let sparse = bits(1000, &[100, 200, 300, 400, 500, 600, 700, 800]);
    for (has, n) in [(&dense, 20), (&some, 5), (&sparse, 8)] {
        let seen = rarest_counts(&a, has);
        assert_eq!(seen.len(), n, "{seen:?}");
        let each = 4000 / n as u32;
        assert!(
            seen.values().all(|&c| c > each * 3 / 4 && c < each * 5 / 4),
            "{seen:?}"
        );
    }
    // Counts saturate; out-of-range pieces are ignored.
    a.decrement(0);
    a.increment(5000);
    a.insert(5000);
    a.check();
    assert_eq!(a.get(0), 0);
}

mod scale;

#[test]
fn pieces_waiting_for_their_hash_check_count_against_the_active_limit() {
    // At most 2 pieces in memory: two complete ones waiting for the check hold both slots.
    let mut p = Picker::new(lengths(), Strategy::Sequential, bits(8, &[]), 2);
    let got = p.pick(1, &Bitfield::full(8), 4, &mut rng());
    assert_eq!(pieces_of(&got), vec![0, 1]);
    for b in &got {
        let _ = p.received(1, *b);
    }
    assert!(
        p.pick(1, &Bitfield::full(8), 4, &mut rng()).is_empty(),
        "no new piece while two wait for their hash check"
    );
    p.verified(lengths().piece(0).unwrap(), true);
    assert_eq!(
        pieces_of(&p.pick(1, &Bitfield::full(8), 2, &mut rng())),
        vec![2]
    );
    p.verified(lengths().piece(1).unwrap(), false);
    let again = p.pick(1, &Bitfield::full(8), 4, &mut rng());
    assert!(
        pieces_of(&again).contains(&1),
        "a failed piece is picked again"
    );
}
