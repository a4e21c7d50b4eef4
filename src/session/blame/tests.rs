//! Unit tests of the per-block blame rules: what is asked, which replies are trusted, which blocks
//! are bad and who sent them, whom to ask, and the pending cases' bounds.

use super::*;
use crate::types::BLOCK_LEN;

fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, n], 6881))
}

fn peer(n: u8) -> Option<Source> {
    Some(Source::Peer(addr(n)))
}

/// A piece of `blocks` blocks of distinct bytes, the last `short` bytes short; its leaves and hash.
fn piece(blocks: usize, short: usize) -> (Vec<u8>, Vec<Hash>, V2Blocks) {
    let len = blocks * BLOCK_LEN as usize - short;
    let data: Vec<u8> = (0..len).map(|i| (i / 1000 % 251) as u8).collect();
    let height = merkle::height_for(blocks as u64);
    let mut leaves = merkle::leaf_hashes(&data);
    leaves.resize(1 << height, merkle::ZERO);
    let b = V2Blocks {
        root: [7; 32],
        hash: merkle::piece_root(&data, height).unwrap(),
        height,
        first_leaf: 3 << height,
        len: len as u32,
    };
    (data, leaves, b)
}

#[test]
fn the_request_names_the_piece_leaves_without_proof() {
    let (_, _, b) = piece(4, 0);
    assert_eq!(
        request_for(&b),
        Some(HashRequest {
            pieces_root: [7; 32],
            base_layer: 0,
            index: 12,
            length: 4,
            proof_layers: 0,
        })
    );
    assert_eq!(request_for(&b).unwrap().uncles(), 0);
}

#[test]
fn nothing_is_asked_for_one_block_pieces_or_more_leaves_than_a_reply_holds() {
    let mut b = piece(1, 0).2;
    assert_eq!(request_for(&b), None);
    b.height = 9;
    assert_eq!(request_for(&b).map(|r| r.length), Some(512));
    b.height = 10;
    assert_eq!(request_for(&b), None, "1024 leaves do not fit one reply");
    b.height = 40;
    assert_eq!(request_for(&b), None);
    b.height = 2;
    b.first_leaf = u64::from(u32::MAX) + 1;
    assert_eq!(request_for(&b), None, "an index beyond the wire's 32 bits");
}

#[test]
fn the_true_leaves_prove_the_piece_and_any_change_does_not() {
    for (blocks, short) in [(2, 0), (4, 0), (3, 100), (8, 1), (5, 16383)] {
        let (_, leaves, b) = piece(blocks, short);
        assert!(leaves_prove(&leaves, b.height, &b.hash), "{blocks} blocks");
        for i in 0..leaves.len() {
            let mut bad = leaves.clone();
            bad[i][0] ^= 1;
            assert!(!leaves_prove(&bad, b.height, &b.hash), "leaf {i} changed");
        }
        assert!(!leaves_prove(
            &leaves[..leaves.len() - 1],
            b.height,
            &b.hash
        ));
        let mut long = leaves.clone();
        long.push(merkle::ZERO);
        assert!(!leaves_prove(&long, b.height, &b.hash));
        assert!(!leaves_prove(&leaves, b.height + 1, &b.hash));
    }
}

#[test]
fn every_set_of_bad_blocks_is_found_exactly() {
    let (data, leaves, _) = piece(4, 500);
    for mask in 0u32..16 {
        let mut got = data.clone();
        for i in 0..4 {
            if mask & (1 << i) != 0 {
                got[i * BLOCK_LEN as usize + 17] ^= 0x55;
            }
        }
        let want: Vec<usize> = (0..4).filter(|i| mask & (1 << i) != 0).collect();
        assert_eq!(
            bad_blocks(&merkle::leaf_hashes(&got), &leaves),
            want,
            "mask {mask}"
        );
    }
    // A reply shorter than the piece's blocks leaves the rest unproven: bad.
    assert_eq!(bad_blocks(&leaves[..2], &leaves[..1]), vec![1]);
}

#[test]
fn culprits_are_the_senders_of_bad_blocks_each_once() {
    let senders = [peer(1), peer(2), peer(1), None, Some(Source::Web(0))];
    assert_eq!(culprits(&[], &senders), vec![]);
    assert_eq!(culprits(&[1], &senders), vec![Source::Peer(addr(2))]);
    assert_eq!(
        culprits(&[2, 0, 1], &senders),
        vec![Source::Peer(addr(1)), Source::Peer(addr(2))]
    );
    assert_eq!(
        culprits(&[3, 9], &senders),
        vec![],
        "unknown senders blame no one"
    );
    assert_eq!(culprits(&[4], &senders), vec![Source::Web(0)]);
}

#[test]
fn only_a_piece_two_peers_sent_is_worth_asking_about() {
    assert!(!worth_asking(&[]));
    assert!(!worth_asking(&[peer(1), peer(1), None]));
    assert!(!worth_asking(&[peer(1), Some(Source::Web(0))]));
    assert!(worth_asking(&[peer(1), peer(2)]));
    assert!(worth_asking(&[
        None,
        peer(2),
        Some(Source::Web(1)),
        peer(3)
    ]));
}

#[test]
fn seeds_that_did_not_send_the_piece_are_asked_first() {
    let peers = [
        (addr(1), false),
        (addr(2), true),
        (addr(3), false),
        (addr(4), true),
    ];
    let senders = [peer(2), peer(3)];
    assert_eq!(
        choose(&peers, &senders, 4),
        vec![addr(4), addr(2), addr(1), addr(3)]
    );
    assert_eq!(choose(&peers, &senders, 1), vec![addr(4)]);
    assert_eq!(choose(&[], &senders, 3), vec![]);
}

fn reply(r: HashRequest, hashes: Vec<Hash>) -> Hashes {
    Hashes { request: r, hashes }
}

#[tokio::test(start_paused = true)]
async fn a_true_answer_from_a_peer_asked_settles_the_piece_once() {
    let (mut data, leaves, b) = piece(4, 0);
    data[BLOCK_LEN as usize * 2] ^= 1;
    let r = request_for(&b).unwrap();
    let p = Pending::default();
    let senders = vec![peer(1), peer(1), peer(2), peer(1)];
    let got = merkle::leaf_hashes(&data);
    let now = Instant::now();
    assert!(p.add(
        5,
        r,
        &b,
        got.clone(),
        senders.clone(),
        vec![addr(3), addr(1)],
        now
    ));
    assert!(
        !p.add(5, r, &b, got, senders, vec![addr(3)], now),
        "once per piece"
    );
    // Not asked, false leaves, uncles, another request: ignored.
    assert_eq!(p.answered(addr(9), &reply(r, leaves.clone()), now), None);
    let mut lie = leaves.clone();
    lie[2] = merkle::hash_block(&data[2 * BLOCK_LEN as usize..3 * BLOCK_LEN as usize]);
    assert_eq!(p.answered(addr(3), &reply(r, lie), now), None);
    let mut extra = leaves.clone();
    extra.push([1; 32]);
    assert_eq!(p.answered(addr(3), &reply(r, extra), now), None);
    let other = HashRequest { index: 0, ..r };
    assert_eq!(
        p.answered(addr(3), &reply(other, leaves.clone()), now),
        None
    );
    assert_eq!(p.len(), 1);
    let v = p.answered(addr(1), &reply(r, leaves.clone()), now).unwrap();
    assert_eq!(
        v,
        Verdict {
            piece: 5,
            bad: vec![2],
            culprits: vec![Source::Peer(addr(2))],
        }
    );
    assert!(p.is_empty());
    assert_eq!(p.answered(addr(3), &reply(r, leaves), now), None, "settled");
}

#[tokio::test(start_paused = true)]
async fn a_late_answer_or_all_rejects_close_the_case_with_no_verdict() {
    let (data, leaves, b) = piece(2, 0);
    let r = request_for(&b).unwrap();
    let got = merkle::leaf_hashes(&data);
    let p = Pending::default();
    let now = Instant::now();
    assert!(p.add(
        1,
        r,
        &b,
        got.clone(),
        vec![peer(1), peer(2)],
        vec![addr(3)],
        now
    ));
    let late = now + ANSWER_WITHIN;
    assert_eq!(p.answered(addr(3), &reply(r, leaves), late), None);
    assert!(p.is_empty());
    assert!(p.add(
        1,
        r,
        &b,
        got,
        vec![peer(1), peer(2)],
        vec![addr(3), addr(4)],
        now
    ));
    p.rejected(addr(3), &r);
    assert_eq!(p.len(), 1, "one asked peer is left");
    p.rejected(addr(9), &r);
    p.rejected(addr(4), &HashRequest { index: 0, ..r });
    assert_eq!(p.len(), 1);
    p.rejected(addr(4), &r);
    assert!(p.is_empty());
}

#[tokio::test(start_paused = true)]
async fn at_most_max_pending_pieces_wait() {
    let (data, _, b) = piece(2, 0);
    let r = request_for(&b).unwrap();
    let got = merkle::leaf_hashes(&data);
    let p = Pending::default();
    let now = Instant::now();
    for i in 0..MAX_PENDING as u32 {
        assert!(p.add(i, r, &b, got.clone(), vec![], vec![addr(1)], now));
    }
    assert!(!p.add(99, r, &b, got.clone(), vec![], vec![addr(1)], now));
    assert!(
        p.add(99, r, &b, got, vec![], vec![addr(1)], now + ANSWER_WITHIN),
        "expired ones make room"
    );
    assert_eq!(p.len(), 1);
}
