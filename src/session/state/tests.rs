//! Unit tests of the torrent state: piece assembly, blame and bans, web seed strikes, unregistering.
use super::*;
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
    (Torrent::new(picker, StdRng::seed_from_u64(1)), lengths)
}

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn fetch_piece(t: &mut Torrent, key: PeerKey, a: SocketAddr) -> Complete {
    let has = Bitfield::full(4);
    let blocks = {
        let Torrent { picker, rng, .. } = t;
        picker.pick(key, &has, 2, rng)
    };
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
    assert_eq!(t.fetched, 2 * u64::from(BLOCK_LEN));
    assert_eq!(t.tallies[&addr(1)].bytes, 2 * u64::from(BLOCK_LEN));
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
    assert_eq!(t.wasted, 3 * 2 * u64::from(BLOCK_LEN));
}

#[test]
fn a_shared_bad_piece_blames_no_one() {
    let (mut t, _) = torrent();
    let has = Bitfield::full(4);
    let b = {
        let Torrent { picker, rng, .. } = &mut t;
        picker.pick(1, &has, 2, rng)
    };
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
    assert!(!t.picker.have().get(0));
}

fn web_seeds(t: &mut Torrent, n: usize) {
    for i in 0..n {
        t.web.push(WebSeed {
            url: format!("http://m{i}/"),
            health: Health::default(),
            bytes: 0,
            has: Bitfield::full(4),
        });
    }
}

/// A whole piece from one source, as a web seed task delivers it.
fn piece_from(t: &mut Torrent, key: PeerKey, source: Source, byte: u8) -> Complete {
    let has = Bitfield::full(4);
    let blocks = {
        let Torrent { picker, rng, .. } = t;
        picker.pick_run(key, &has, 2, rng)
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
        assert!(!t.web[0].has.get(bad.piece.get()), "not asked for it again");
        assert!(
            t.web[0].health.dropped().is_none(),
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
    assert!(t.web[0].health.dropped().is_some());
    assert!(t.web[1].health.dropped().is_none());
    assert_eq!(
        t.from_web,
        3 * 2 * u64::from(BLOCK_LEN),
        "only verified bytes count"
    );
    assert_eq!(t.web[0].bytes, 0, "the bad mirror supplied nothing useful");
    assert_eq!(t.web[1].bytes, 3 * 2 * u64::from(BLOCK_LEN));
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
    assert!(!t.web[0].has.get(0) && !t.web[1].has.get(0));
    // Neither mirror is offered piece 0 again; other pieces go on.
    let next = {
        let Torrent {
            picker, rng, web, ..
        } = &mut t;
        picker.pick_run(100, &web[0].has, 2, rng)
    };
    assert!(next.iter().all(|b| b.piece.get() != 0));
    assert!(t.web.iter().all(|w| w.health.dropped().is_none()));
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
    });
    let has = Bitfield::full(4);
    t.picker.add_peer(&has);
    let blocks = {
        let Torrent { picker, rng, .. } = &mut t;
        picker.pick(key, &has, 3, rng)
    };
    t.unregister(key, &has, &blocks);
    assert!(t.peers.is_empty());
    let again = {
        let Torrent { picker, rng, .. } = &mut t;
        picker.pick(7, &has, 3, rng)
    };
    assert_eq!(again, blocks);
}
