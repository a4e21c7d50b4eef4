//! The picker at scale (issue 17): 100,000 pieces and 1,000 peers with random bitfields. Every
//! rarest-first pick is checked against a brute-force oracle over the same state, through peers
//! leaving, `have`s, failed hashes and returned requests; a whole download verifies every piece
//! once; with requests in flight from all 1,000 at once (chokes, departures, deliveries in any
//! order), no block is handed to two peers before the endgame, the endgame's duplicates and
//! cancels are exact, and availability stays equal to a recount of the peers' bitfields.
//! Correctness only: the time of 10,000 picks is printed, not asserted.

use super::*;
use rand::RngCore;
use std::collections::HashMap;
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

/// The peers' bitfields summed piece by piece, against the picker's availability.
fn check_availability(p: &Picker, peers: &[Bitfield]) {
    let mut count = vec![0u32; PIECES as usize];
    for has in peers {
        for i in avail::ones(has) {
            count[i as usize] += 1;
        }
    }
    for i in 0..PIECES {
        assert_eq!(p.avail.get(i), count[i as usize], "piece {i}");
    }
    p.avail.check();
}

/// Requests in flight as the session would track them: each block's requesters (by slot), and
/// each slot's blocks.
#[derive(Default)]
struct Flights {
    holders: HashMap<BlockRef, Vec<usize>>,
    /// The blocks in `holders`, for a random pick of one to deliver.
    blocks: Vec<BlockRef>,
    of: Vec<Vec<BlockRef>>,
}

impl Flights {
    fn add(&mut self, slot: usize, b: BlockRef) {
        let h = self.holders.entry(b).or_default();
        if h.is_empty() {
            self.blocks.push(b);
        }
        h.push(slot);
        self.of[slot].push(b);
    }

    /// `b` arrived or was returned by every holder.
    fn drop_block(&mut self, b: BlockRef) -> Vec<usize> {
        let h = self.holders.remove(&b).unwrap_or_default();
        for &s in &h {
            self.of[s].retain(|x| *x != b);
        }
        self.blocks.retain(|x| *x != b);
        h
    }

    /// `slot` returns all its blocks (choke, departure).
    fn drop_slot(&mut self, slot: usize) -> Vec<BlockRef> {
        let mine = std::mem::take(&mut self.of[slot]);
        for b in &mine {
            let h = self.holders.get_mut(b).unwrap();
            h.retain(|s| *s != slot);
            if h.is_empty() {
                self.holders.remove(b);
                self.blocks.retain(|x| x != b);
            }
        }
        mine
    }
}

/// 100,000 pieces of four blocks, all but about 3,000 (every 33rd) verified already.
fn nearly_done(rng: &mut StdRng) -> (Picker, Vec<Bitfield>, Vec<u32>) {
    let lengths =
        Lengths::new(u64::from(PIECES) * 4 * u64::from(BLOCK_LEN), 4 * BLOCK_LEN).unwrap();
    let missing: Vec<u32> = (0..PIECES).filter(|i| i % 33 == 7).collect();
    let mut have = Bitfield::full(PIECES);
    for &i in &missing {
        have.clear(i);
    }
    let mut picker = Picker::new(lengths, Strategy::Rarest, have, 256);
    let mut peers: Vec<Bitfield> = (0..PEERS).map(|_| random_has(rng)).collect();
    // Three seeds among them: every piece is somewhere.
    for has in peers.iter_mut().take(3) {
        *has = Bitfield::full(PIECES);
    }
    for has in &peers {
        picker.add_peer(has);
    }
    (picker, peers, missing)
}

/// One peer's pick of up to 8 blocks, checked: pieces it has and we lack; before the endgame no
/// block anyone else holds; in it, never one this peer holds and at most
/// [`MAX_ENDGAME_REQUESTERS`] requesters.
fn checked_request(
    p: &mut Picker,
    f: &mut Flights,
    slot: usize,
    key: PeerKey,
    has: &Bitfield,
    rng: &mut StdRng,
) {
    let endgame = p.in_endgame();
    for b in p.pick(key, has, 8, rng) {
        let i = b.piece.get();
        assert!(has.get(i) && !p.have.get(i), "{b:?}");
        let h = f.holders.get(&b).map_or(&[][..], Vec::as_slice);
        assert!(!h.contains(&slot), "{b:?} twice to slot {slot}");
        assert!(
            endgame || h.is_empty(),
            "{b:?} to {h:?} and {slot} before the endgame"
        );
        assert!(
            h.len() < MAX_ENDGAME_REQUESTERS,
            "{b:?} to {h:?} and {slot}"
        );
        f.add(slot, b);
    }
    assert!(p.active.len() + p.verifying <= p.max_active);
}

#[test]
fn a_thousand_peers_with_requests_in_flight_never_share_a_block_before_the_endgame() {
    let mut rng = StdRng::seed_from_u64(5);
    let (mut p, mut peers, missing) = nearly_done(&mut rng);
    let mut keys: Vec<PeerKey> = (0..PEERS as PeerKey).collect();
    let mut next_key = PEERS as PeerKey;
    let mut f = Flights {
        of: vec![Vec::new(); PEERS],
        ..Default::default()
    };
    let mut verified = vec![0u32; PIECES as usize];
    let (mut steps, mut duplicates) = (0u32, 0u32);
    while !p.is_complete() {
        steps += 1;
        assert!(steps < 400_000, "stuck with {} left", p.left());
        let slot = rng.random_range(0..PEERS);
        match rng.random_range(0..100) {
            // A request: up to 8 blocks while it has fewer than 16 in flight.
            0..45 if f.of[slot].len() < 16 => {
                checked_request(&mut p, &mut f, slot, keys[slot], &peers[slot], &mut rng);
            }
            // A delivery of any block in flight, from any of its requesters.
            0..85 if !f.blocks.is_empty() => {
                let b = f.blocks[rng.random_range(0..f.blocks.len())];
                let h = f.holders[&b].clone();
                let from = h[rng.random_range(0..h.len())];
                let Receipt::Useful { complete, cancel } = p.received(keys[from], b) else {
                    panic!("{b:?} from {from} was useless");
                };
                duplicates += u32::from(h.len() > 1);
                let mut want: Vec<PeerKey> =
                    h.iter().filter(|s| **s != from).map(|s| keys[*s]).collect();
                let mut cancel = cancel;
                want.sort_unstable();
                cancel.sort_unstable();
                assert_eq!(
                    cancel, want,
                    "the endgame cancels exactly the other requesters"
                );
                f.drop_block(b);
                if complete {
                    let i = b.piece.get();
                    // A first delivery of every 50th missing piece fails its hash check.
                    let ok = i % 50 != 7 || p.failed.get(i);
                    p.verified(b.piece, ok);
                    verified[i as usize] += u32::from(ok);
                }
            }
            // A choke: its requests come back.
            85..90 => {
                for b in f.drop_slot(slot) {
                    p.unrequest(keys[slot], b);
                }
            }
            // A departure (not one of the seeds), and a new peer in its place.
            90..95 if slot >= 3 => {
                for b in f.drop_slot(slot) {
                    p.unrequest(keys[slot], b);
                }
                p.remove_peer(&peers[slot]);
                peers[slot] = random_has(&mut rng);
                p.add_peer(&peers[slot]);
                keys[slot] = next_key;
                next_key += 1;
            }
            // Twenty `have`s.
            95..100 => {
                for _ in 0..20 {
                    let i = rng.random_range(0..PIECES);
                    if peers[slot].set(i) {
                        p.add_have(p.lengths.piece(i).unwrap());
                    }
                }
            }
            _ => {}
        }
        if steps % 5_000 == 0 {
            check_availability(&p, &peers);
        }
    }
    check_availability(&p, &peers);
    assert!(missing.iter().all(|&i| verified[i as usize] == 1));
    assert_eq!(verified.iter().sum::<u32>() as usize, missing.len());
    assert!(duplicates > 0, "the endgame was reached and raced");
    assert!(f.blocks.is_empty() && f.holders.is_empty());
}
