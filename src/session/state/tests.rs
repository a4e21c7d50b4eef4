//! Unit tests of the torrent state: piece assembly, blame and bans, web seed strikes, unregistering.
use super::*;
use crate::session::pool::PeerSource;
use crate::types::{Lengths, BLOCK_LEN};
use rand::SeedableRng;
use tokio::sync::mpsc;

fn torrent() -> (Torrent, Lengths) {
    let lengths = Lengths::new(4 * 2 * u64::from(BLOCK_LEN), 2 * BLOCK_LEN).unwrap();
    let picker = Picker::new(
        lengths,
        crate::picker::Strategy::Sequential,
        Bitfield::new(4),
        8,
    );
    let counters = std::sync::Arc::new(crate::session::counters::Counters::default());
    (
        Torrent::new(picker, StdRng::seed_from_u64(1), counters),
        lengths,
    )
}

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn fetch_piece(t: &mut Torrent, key: PeerKey, a: SocketAddr) -> Complete {
    let has = Bitfield::full(4);
    let blocks = t.pick(key, &has, 2);
    assert_eq!(blocks.len(), 2);
    let len = 2 * BLOCK_LEN;
    let first = t.block(
        key,
        Source::Peer(a),
        blocks[0],
        &vec![1; BLOCK_LEN as usize],
        len,
    );
    assert!(first.is_none());
    t.block(
        key,
        Source::Peer(a),
        blocks[1],
        &vec![2; BLOCK_LEN as usize],
        len,
    )
    .expect("second block completes the piece")
}

#[test]
fn blocks_assemble_into_a_piece_and_good_pieces_are_announced() {
    let (mut t, _) = torrent();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (key, ours) = t.register(PeerEntry {
        addr: addr(1),
        id: [1; 20],
        tx,
        stats: Default::default(),
        unchoked: false,
        listen: None,
        seed: false,
        mse: false,
        utp: false,
    });
    assert_eq!(ours.count(), 0);
    let c = fetch_piece(&mut t, key, addr(1));
    assert_eq!(c.data.len(), 2 * BLOCK_LEN as usize);
    assert_eq!(c.data[0], 1);
    assert_eq!(c.data[BLOCK_LEN as usize], 2);
    assert_eq!(
        c.contributors,
        vec![(Source::Peer(addr(1)), 2 * u64::from(BLOCK_LEN))]
    );
    assert!(t
        .verified(c.piece, true, 2 * BLOCK_LEN, &c.contributors)
        .is_empty());
    assert!(matches!(rx.try_recv(), Ok(Command::Have(0))));
    assert_eq!(t.totals().fetched, 2 * u64::from(BLOCK_LEN));
    assert_eq!(
        t.tallies().find(|(a, _)| **a == addr(1)).unwrap().1.bytes,
        2 * u64::from(BLOCK_LEN)
    );
    assert_eq!(t.buffered(), 0);
}

#[test]
fn a_sole_contributor_of_three_bad_pieces_is_banned_and_disconnected() {
    let (mut t, _) = torrent();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (key, _) = t.register(PeerEntry {
        addr: addr(9),
        id: [9; 20],
        tx,
        stats: Default::default(),
        unchoked: false,
        listen: None,
        seed: false,
        mse: false,
        utp: false,
    });
    for round in 1..=3 {
        let c = fetch_piece(&mut t, key, addr(9));
        let banned = t.verified(c.piece, false, 2 * BLOCK_LEN, &c.contributors);
        assert_eq!(banned.is_empty(), round < 3, "round {round}");
    }
    assert!(t.is_banned(&addr(9), None));
    assert!(
        t.is_banned(&addr(10), Some(&[9; 20])),
        "banned by peer id too"
    );
    assert!(matches!(rx.try_recv(), Ok(Command::Disconnect(_))));
    assert_eq!(t.totals().wasted, 3 * 2 * u64::from(BLOCK_LEN));
}

#[test]
fn a_shared_bad_piece_blames_no_one() {
    let (mut t, _) = torrent();
    let has = Bitfield::full(4);
    let b = t.pick(1, &has, 2);
    t.block(
        1,
        Source::Peer(addr(1)),
        b[0],
        &vec![0; BLOCK_LEN as usize],
        2 * BLOCK_LEN,
    );
    let c = t
        .block(
            2,
            Source::Peer(addr(2)),
            b[1],
            &vec![0; BLOCK_LEN as usize],
            2 * BLOCK_LEN,
        )
        .unwrap();
    assert_eq!(c.contributors.len(), 2);
    for _ in 0..5 {
        assert!(t
            .verified(c.piece, false, 2 * BLOCK_LEN, &c.contributors)
            .is_empty());
    }
    assert!(!t.is_banned(&addr(1), None) && !t.is_banned(&addr(2), None));
    assert!(!t.picker().have().get(0));
}

fn web_seeds(t: &mut Torrent, n: usize) {
    for i in 0..n {
        t.add_web_seed(WebSeed::new(
            format!("http://m{i}/"),
            crate::webseed::health::Health::default(),
            4,
        ));
    }
}

/// A whole piece from one source, as a web seed task delivers it.
fn piece_from(t: &mut Torrent, key: PeerKey, source: Source, byte: u8) -> Complete {
    let blocks = {
        let Source::Web(i) = source else {
            panic!("a web seed's piece")
        };
        t.pick_web(key, i, 2)
    };
    let mut done = None;
    for b in blocks {
        done = t.block(key, source, b, &vec![byte; b.len as usize], 2 * BLOCK_LEN);
    }
    done.expect("the run completes a piece")
}

#[test]
fn a_mirror_that_sent_a_piece_wrong_is_struck_once_another_source_proves_it() {
    let (mut t, _) = torrent();
    web_seeds(&mut t, 2);
    let mut dropped = Vec::new();
    for round in 0..3 {
        let bad = piece_from(&mut t, 100, Source::Web(0), 0xee);
        assert!(t
            .verified(bad.piece, false, 2 * BLOCK_LEN, &bad.contributors)
            .is_empty());
        assert!(
            !t.web()[0].has().get(bad.piece.get()),
            "not asked for it again"
        );
        assert!(
            t.web()[0].health().dropped().is_none(),
            "no strike before proof"
        );
        let good = piece_from(&mut t, 101, Source::Web(1), 1);
        assert_eq!(
            good.piece, bad.piece,
            "round {round}: the failed piece is retried"
        );
        dropped = t.verified(good.piece, true, 2 * BLOCK_LEN, &good.contributors);
    }
    assert_eq!(
        dropped,
        vec![Source::Web(0)],
        "the third proven bad piece drops it"
    );
    assert!(t.web()[0].health().dropped().is_some());
    assert!(t.web()[1].health().dropped().is_none());
    assert_eq!(
        t.totals().from_web,
        3 * 2 * u64::from(BLOCK_LEN),
        "only verified bytes count"
    );
    assert_eq!(
        t.web()[0].bytes(),
        0,
        "the bad mirror supplied nothing useful"
    );
    assert_eq!(t.web()[1].bytes(), 3 * 2 * u64::from(BLOCK_LEN));
}

#[test]
fn a_piece_every_mirror_serves_differently_strikes_none() {
    // The Internet Archive case: a file rewritten after the torrent was made.
    let (mut t, _) = torrent();
    web_seeds(&mut t, 2);
    let a = piece_from(&mut t, 100, Source::Web(0), 0xee);
    t.verified(a.piece, false, 2 * BLOCK_LEN, &a.contributors);
    let b = piece_from(&mut t, 101, Source::Web(1), 0xee);
    assert_eq!(b.piece, a.piece);
    t.verified(b.piece, false, 2 * BLOCK_LEN, &b.contributors);
    assert!(!t.web()[0].has().get(0) && !t.web()[1].has().get(0));
    // Neither mirror is offered piece 0 again; other pieces go on.
    let next = t.pick_web(100, 0, 2);
    assert!(next.iter().all(|b| b.piece.get() != 0));
    assert!(t.web().iter().all(|w| w.live()));
}

#[test]
fn unregistering_returns_pending_blocks() {
    let (mut t, _) = torrent();
    let (tx, _rx) = mpsc::unbounded_channel();
    let (key, _) = t.register(PeerEntry {
        addr: addr(1),
        id: [1; 20],
        tx,
        stats: Default::default(),
        unchoked: false,
        listen: None,
        seed: false,
        mse: false,
        utp: false,
    });
    let has = Bitfield::full(4);
    t.add_peer_pieces(&has);
    let blocks = t.pick(key, &has, 3);
    t.unregister(key, &has, &blocks);
    assert!(t.peer_count() == 0);
    let again = t.pick(7, &has, 3);
    assert_eq!(again, blocks);
}

fn entry(a: SocketAddr, id: u8) -> (PeerEntry, mpsc::UnboundedReceiver<Command>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let e = PeerEntry {
        addr: a,
        id: [id; 20],
        tx,
        stats: Default::default(),
        unchoked: false,
        listen: Some(a),
        seed: false,
        mse: false,
        utp: false,
    };
    (e, rx)
}

#[test]
fn admission_refuses_the_banned_and_a_second_connection_of_one_peer() {
    let (mut t, lengths) = torrent();
    t.pool_mut()
        .add(&[addr(1)], PeerSource::Tracker, crate::session::now());
    let (e, _rx1) = entry(addr(1), 1);
    let (_, _, source) = t.admit(e, "lt", true).unwrap();
    assert_eq!(source, Some(PeerSource::Tracker), "the pool's record");
    let (e, _rx2) = entry(addr(2), 1);
    assert_eq!(t.admit(e, "lt", false).err(), Some(Refused::Duplicate));
    let (e, _rx3) = entry(addr(3), 3);
    assert_eq!(
        t.admit(e, "x", false).unwrap().2,
        Some(PeerSource::Incoming)
    );
    assert_eq!((t.peer_count(), t.peers_ever()), (2, 2));
    let tally: Vec<_> = t.tallies().map(|(a, v)| (*a, v.client.clone())).collect();
    assert!(tally.contains(&(addr(1), "lt".to_string())));
    // Three bad pieces from addr(3) alone ban it; it cannot come back under another address.
    for _ in 0..MAX_STRIKES {
        t.verified(
            lengths.piece(0).unwrap(),
            false,
            2 * BLOCK_LEN,
            &[(Source::Peer(addr(3)), 1)],
        );
    }
    let (e, _rx4) = entry(addr(4), 3);
    assert_eq!(t.admit(e, "x", false).err(), Some(Refused::Banned));
    let (e, _rx5) = entry(addr(3), 5);
    assert_eq!(t.admit(e, "x", false).err(), Some(Refused::Banned));
}

#[test]
fn slots_count_connected_handshaking_and_dialling() {
    let (mut t, _) = torrent();
    assert_eq!(t.busy(), 0);
    t.claim_incoming();
    t.claim_incoming();
    assert_eq!(t.busy(), 2);
    t.settle_incoming();
    let (e, _rx) = entry(addr(1), 1);
    t.admit(e, "lt", false).unwrap();
    assert_eq!(t.busy(), 2, "one handshaking, one connected");
    t.settle_incoming();
    t.settle_incoming();
    assert_eq!(t.busy(), 1, "settling never goes below zero");
    t.pool_mut()
        .add(&[addr(9)], PeerSource::Manual, crate::session::now());
    assert_eq!(t.pool_mut().due(crate::session::now(), 5), vec![addr(9)]);
    assert_eq!(t.busy(), 2, "a dial in progress holds a slot");
}

#[test]
fn tracker_status_is_hopeless_only_when_every_tier_failed() {
    let (mut t, _) = torrent();
    t.set_tracker_tiers(2);
    t.tracker_tier_tried();
    assert!(!t.trackers().all_failed());
    t.tracker_failed("udp://a", "refused".into());
    t.tracker_tier_tried();
    assert!(t.trackers().all_failed());
    assert_eq!(t.trackers().last_error(), Some("udp://a: refused"));
    assert_eq!(t.tracker_answered(&[addr(7), addr(7)], false), 1);
    assert!(!t.trackers().all_failed(), "one answer is enough");
}

#[test]
fn a_choke_round_tells_only_the_peers_whose_state_changes() {
    let (mut t, _) = torrent();
    let mut rxs = Vec::new();
    for i in 1..=2 {
        let (e, rx) = entry(addr(i), i as u8);
        let (key, _, _) = t.admit(e, "lt", false).unwrap();
        let stats = PeerStats {
            interested: true,
            downloaded: u64::from(i),
            ..Default::default()
        };
        t.report(key, stats, false, 100);
        rxs.push(rx);
    }
    assert_eq!(t.totals().uploaded, 200);
    let mut choker = crate::session::choker::Choker::default();
    t.choke_round(&mut choker);
    assert_eq!(t.unchoked(), 2, "two interested peers, four slots");
    for rx in &mut rxs {
        assert!(matches!(rx.try_recv(), Ok(Command::Unchoke)));
    }
    t.choke_round(&mut choker);
    for rx in &mut rxs {
        assert!(rx.try_recv().is_err(), "no change, no message");
    }
}

#[test]
fn a_seeding_choke_round_takes_turns_instead_of_ranking_by_upload() {
    let lengths = Lengths::new(4 * 2 * u64::from(BLOCK_LEN), 2 * BLOCK_LEN).unwrap();
    let picker = Picker::new(
        lengths,
        crate::picker::Strategy::Sequential,
        Bitfield::full(4),
        8,
    );
    let counters = std::sync::Arc::new(crate::session::counters::Counters::default());
    let mut t = Torrent::new(picker, StdRng::seed_from_u64(1), counters);
    let mut peers = Vec::new();
    for i in 1..=7 {
        let (e, rx) = entry(addr(i), i as u8);
        let (key, _, _) = t.admit(e, "lt", false).unwrap();
        // The later a peer came, the more we already sent it (and it never sent us anything).
        let stats = PeerStats {
            interested: true,
            uploaded: 1_000 * u64::from(i),
            ..Default::default()
        };
        t.report(key, stats, false, 0);
        peers.push((key, rx));
    }
    peers.sort_by_key(|p| p.0);
    let mut choker = crate::session::choker::Choker::default();
    t.choke_round(&mut choker);
    // Round robin: all seen together, so the lowest keys take the four slots and the optimistic
    // one; tit-for-tat by upload would have taken the last four.
    let got: Vec<bool> = peers
        .iter_mut()
        .map(|(_, rx)| matches!(rx.try_recv(), Ok(Command::Unchoke)))
        .collect();
    assert_eq!(got, [true, true, true, true, true, false, false]);
}

#[test]
fn pex_flags_say_seed_reachable_encryption_and_utp_honestly() {
    let (mut t, _) = torrent();
    let (mut e, _rx1) = entry(addr(1), 1);
    e.mse = true;
    e.utp = true;
    let (key, _, _) = t.admit(e, "lt", true).unwrap();
    t.report(key, PeerStats::default(), true, 0);
    let (mut e, _rx2) = entry(addr(2), 2);
    e.listen = None;
    t.admit(e, "x", false).unwrap();
    use crate::wire::pex::PexFlags;
    let flags = t.pex_peers();
    assert_eq!(
        flags.len(),
        1,
        "a peer with no known listening address is not told of"
    );
    let (a, f) = flags[0];
    assert_eq!(a, addr(1));
    assert!(f.contains(PexFlags::SEED) && f.contains(PexFlags::REACHABLE));
    assert!(f.contains(PexFlags::ENCRYPTION) && f.contains(PexFlags::UTP));
    let (mut e, _rx3) = entry(addr(3), 3);
    e.listen = Some(addr(3));
    t.admit(e, "tcp", true).unwrap();
    let plain = t
        .pex_peers()
        .into_iter()
        .find(|(a, _)| *a == addr(3))
        .unwrap()
        .1;
    assert!(!plain.contains(PexFlags::UTP) && !plain.contains(PexFlags::ENCRYPTION));
}

#[test]
fn a_checked_piece_s_buffer_is_reused_by_the_next_piece_until_the_download_is_complete() {
    let (mut t, _) = torrent();
    let mut previous = None;
    for i in 0..4 {
        let c = fetch_piece(&mut t, 1, addr(9));
        assert_eq!(c.data, [vec![1u8; 16_384], vec![2u8; 16_384]].concat());
        if let Some(p) = previous {
            assert_eq!(
                c.data.as_ptr(),
                p,
                "piece {i} is assembled in the last checked buffer"
            );
        }
        previous = Some(c.data.as_ptr());
        t.verified(c.piece, true, 2 * BLOCK_LEN, &c.contributors);
        t.recycle(c.data);
    }
    assert!(t.picker().is_complete());
    assert_eq!(
        t.pieces.spare_count(),
        0,
        "no spare buffer kept once complete"
    );
}
