//! The picker at scale (issue 17): 100,000 pieces and 1,000 peers with random bitfields. Every
//! rarest-first pick is checked against a brute-force oracle over the same state, through peers
//! leaving, `have`s, failed hashes and returned requests; a whole download verifies every piece
//! once. Correctness only: the time of 10,000 picks is printed, not asserted.

use super::*;
use rand::RngCore;
use std::time::{Duration, Instant};

const PIECES: u32 = 100_000;
const PEERS: usize = 1_000;

/// One block per piece: a pick of one block is one new piece.
fn big() -> Lengths {
    Lengths::new(u64::from(PIECES) * u64::from(BLOCK_LEN), BLOCK_LEN).unwrap()
}

/// A random bitfield of density 1/2^k, k in 4..=9: peers at every stage of a large download. Its
/// words come from a splitmix64 seeded by `rng` (the `StdRng` itself is slow in a debug build).
fn random_has(rng: &mut StdRng) -> Bitfield {
    let mut state = rng.next_u64();
    let mut word = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let k = rng.random_range(4..=9);
    let mut bytes = Vec::with_capacity(Bitfield::byte_len(PIECES) + 8);
    while bytes.len() < Bitfield::byte_len(PIECES) {
        let mut w = word();
        for _ in 1..k {
            w &= word();
        }
        bytes.extend_from_slice(&w.to_be_bytes());
    }
    bytes.truncate(Bitfield::byte_len(PIECES));
    Bitfield::from_bytes(&bytes, PIECES).unwrap()
}

struct Swarm {
    picker: Picker,
    peers: Vec<Bitfield>,
    rng: StdRng,
}

/// 1,000 random peers; `have` already verified.
fn swarm(seed: u64, have: &[u32]) -> Swarm {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut picker = Picker::new(big(), Strategy::Rarest, bits(PIECES, have), 128);
    let peers: Vec<Bitfield> = (0..PEERS).map(|_| random_has(&mut rng)).collect();
    for has in &peers {
        picker.add_peer(has);
    }
    Swarm { picker, peers, rng }
}

/// Past the random start: rarest-first is in force.
const STARTED: [u32; RANDOM_FIRST_PIECES as usize] = [10, 20, 30, 40];

/// Brute force over the same state: the lowest availability among the pieces `has` could start.
fn oracle(p: &Picker, has: &Bitfield) -> Option<u32> {
    (0..PIECES)
        .filter(|&i| has.get(i) && matches!(p.pieces[i as usize], Piece::Missing))
        .map(|i| p.avail.get(i))
        .min()
}

/// Peer `k` picks one block (one new piece), checked against the oracle.
fn checked_pick(s: &mut Swarm, k: usize) -> Option<BlockRef> {
    let has = &s.peers[k];
    let rarest = oracle(&s.picker, has);
    let got = s.picker.pick(k as PeerKey, has, 1, &mut s.rng);
    match (rarest, got.as_slice()) {
        (None, []) => None,
        (Some(a), [b]) => {
            assert!(has.get(b.piece.get()), "peer {k} lacks {b:?}");
            assert_eq!(s.picker.availability(b.piece), a, "peer {k}: {b:?}");
            Some(*b)
        }
        other => panic!("peer {k}: {other:?}"),
    }
}

/// Receives `b` from peer `k` and reports the hash check.
fn complete(p: &mut Picker, k: usize, b: BlockRef, ok: bool) {
    let receipt = p.received(k as PeerKey, b);
    assert_eq!(
        receipt,
        Receipt::Useful {
            complete: true,
            cancel: vec![]
        }
    );
    p.verified(b.piece, ok);
}

/// `left` and `left_all` against a walk over every piece.
fn check_left(p: &Picker) {
    let left: u64 = (0..PIECES)
        .filter(|&i| p.is_wanted_missing(i))
        .map(|i| piece_bytes(p.lengths, i))
        .sum();
    assert_eq!(p.left(), left);
    let all: u64 = (0..PIECES)
        .filter(|&i| !p.have.get(i))
        .map(|i| piece_bytes(p.lengths, i))
        .sum();
    assert_eq!(p.left_all(), all);
}

#[test]
fn rarest_first_at_100k_pieces_and_1000_peers_matches_a_brute_force_oracle() {
    let mut s = swarm(1, &STARTED);
    s.picker.avail.check();
    let mut spread = std::collections::HashSet::new();
    for _ in 0..300 {
        let k = s.rng.random_range(0..s.peers.len());
        if let Some(b) = checked_pick(&mut s, k) {
            spread.insert(b.piece.get() / 1000);
            complete(&mut s.picker, k, b, true);
        }
    }
    assert!(spread.len() > 50, "ties are broken at random: {spread:?}");
    s.picker.avail.check();
    check_left(&s.picker);
}

#[test]
fn rarest_first_holds_through_departures_haves_failed_hashes_and_returns() {
    let mut s = swarm(2, &STARTED);
    for round in 0..400 {
        let k = s.rng.random_range(0..s.peers.len());
        match s.rng.random_range(0..10) {
            // A peer leaves, another arrives.
            0 => {
                let gone = s.peers.swap_remove(k);
                s.picker.remove_peer(&gone);
                let has = random_has(&mut s.rng);
                s.picker.add_peer(&has);
                s.peers.push(has);
            }
            // A peer announces 100 pieces.
            1 => {
                for _ in 0..100 {
                    let i = s.rng.random_range(0..PIECES);
                    if s.peers[k].set(i) {
                        s.picker.add_have(big().piece(i).unwrap());
                    }
                }
            }
            // A piece fails its hash check: back in the pool, then fetched by one owner.
            2 => {
                if let Some(b) = checked_pick(&mut s, k) {
                    complete(&mut s.picker, k, b, false);
                    assert!(s.picker.failed.get(b.piece.get()));
                }
            }
            // A request is returned (choke): the piece is pickable again.
            3 => {
                if let Some(b) = checked_pick(&mut s, k) {
                    s.picker.unrequest(k as PeerKey, b);
                    assert!(s.picker.avail.contains(b.piece.get()));
                }
            }
            _ => {
                if let Some(b) = checked_pick(&mut s, k) {
                    let i = b.piece.get();
                    if s.picker.failed.get(i) {
                        assert_eq!(s.picker.active_ref(i).owner, Some(k as PeerKey));
                    }
                    complete(&mut s.picker, k, b, true);
                }
            }
        }
        if round % 100 == 0 {
            s.picker.avail.check();
        }
    }
    // Availability is still exactly the sum of the peers' bitfields.
    let mut count = vec![0u32; PIECES as usize];
    for has in &s.peers {
        for i in avail::ones(has) {
            count[i as usize] += 1;
        }
    }
    assert!((0..PIECES).all(|i| s.picker.avail.get(i) == count[i as usize]));
    s.picker.avail.check();
    check_left(&s.picker);
}

#[test]
fn a_download_of_100k_pieces_from_1000_peers_verifies_every_piece_once() {
    let mut s = swarm(3, &[]);
    s.peers.push(Bitfield::full(PIECES)); // a seed: every piece is somewhere
    s.picker.add_peer(&Bitfield::full(PIECES));
    // The peers that unchoke us: the seed, fast (every other turn, 32 requests at once), and 40
    // slower others (4 requests); all 1,000 count in availability.
    let seed = s.peers.len() - 1;
    let window = |k| if k == seed { 32 } else { 4 };
    let unchoking: Vec<usize> = (0..seed).filter(|&k| k % 25 == 0).collect();
    let mut verified = vec![0u8; PIECES as usize];
    let mut failures = 0;
    let mut picks = 0;
    while !s.picker.is_complete() {
        picks += 1;
        assert!(picks < 100_000, "stuck with {} left", s.picker.left());
        let k = if picks % 2 == 0 {
            seed
        } else {
            unchoking[picks / 2 % unchoking.len()]
        };
        let got = s
            .picker
            .pick(k as PeerKey, &s.peers[k], window(k), &mut s.rng);
        for b in got {
            let Receipt::Useful { complete: true, .. } = s.picker.received(k as PeerKey, b) else {
                continue;
            };
            let i = b.piece.get();
            // Every 997th piece fails its first check.
            let ok = i % 997 != 0 || s.picker.failed.get(i);
            failures += usize::from(!ok);
            s.picker.verified(b.piece, ok);
            verified[i as usize] += u8::from(ok);
        }
    }
    assert!(verified.iter().all(|&v| v == 1));
    assert_eq!(failures, PIECES.div_ceil(997) as usize);
    assert!(s.picker.has_all() && s.picker.avail.is_empty());
    assert_eq!((s.picker.left(), s.picker.left_all()), (0, 0));
    s.picker.avail.check();
    assert!(s.picker.pick(1, &s.peers[1], 32, &mut s.rng).is_empty());
}

#[test]
fn ten_thousand_picks_at_100k_pieces_and_1000_peers_are_timed() {
    let mut s = swarm(4, &STARTED);
    let mut spent = Duration::ZERO;
    let mut picked = 0;
    for _ in 0..10_000 {
        let k = s.rng.random_range(0..s.peers.len());
        let start = Instant::now();
        let got = s.picker.pick(k as PeerKey, &s.peers[k], 1, &mut s.rng);
        spent += start.elapsed();
        for b in got {
            picked += 1;
            s.picker.received(k as PeerKey, b);
            s.picker.verified(b.piece, true);
        }
    }
    eprintln!("10000 picks at {PIECES} pieces and {PEERS} peers: {spent:?} ({picked} pieces)");
    assert!(picked > 9_000);
}
