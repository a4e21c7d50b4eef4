//! Scripted peers for the Fast extension (BEP 6): `have all` / `have none` as our first message,
//! rejects for requests we will not serve, allowed-fast pieces fetched while choked, a choke that
//! leaves our requests standing until the peer rejects them, no re-request storm after rejects, and
//! a peer without the bit that sends a BEP 6 message dropped.
use super::*;

/// The messages pixtorrent sends within `d` of paused time (keep-alives skipped).
async fn within(peer: &mut Scripted, d: Duration) -> Vec<Message> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(d, async {
        while let Some(m) = peer.recv().await {
            got.push(m);
        }
    })
    .await;
    got
}

fn requests_in(msgs: &[Message]) -> Vec<(u32, u32)> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Request { index, begin, .. } => Some((*index, *begin)),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_first_message_is_have_all_or_have_none_and_only_to_a_fast_peer() {
    for (have, fast, first) in [
        (
            (0..PIECES).collect::<Vec<_>>(),
            true,
            Some(Message::HaveAll),
        ),
        (vec![], true, Some(Message::HaveNone)),
        (
            (0..PIECES).collect(),
            false,
            Some(Message::Bitfield(Bitfield::full(PIECES))),
        ),
        // No availability message at all to a plain peer when we have nothing (BEP 3 allows it).
        (vec![], false, None),
    ] {
        let (ctx, _) = torrent(&have);
        let (mut peer, _task) = Scripted::connect(&ctx, addr(1101));
        peer.handshake_with(ctx.info_hash, ctx.info_hash, [11; 20], fast)
            .await;
        let msgs = within(&mut peer, Duration::from_secs(5)).await;
        let availability: Vec<&Message> = msgs
            .iter()
            .filter(|m| {
                matches!(
                    m,
                    Message::HaveAll | Message::HaveNone | Message::Bitfield(_)
                )
            })
            .collect();
        assert_eq!(
            availability,
            first.iter().collect::<Vec<_>>(),
            "{have:?} {fast}"
        );
        if first.is_some() {
            assert_eq!(msgs.first(), first.as_ref(), "first after the handshake");
        }
        let fast_only = msgs.iter().any(|m| {
            matches!(
                m,
                Message::HaveAll
                    | Message::HaveNone
                    | Message::AllowedFast(_)
                    | Message::Reject { .. }
                    | Message::Suggest(_)
            )
        });
        assert_eq!(
            fast_only, fast,
            "BEP 6 messages only to a peer with the bit"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn requests_while_choked_are_rejected_and_a_later_choke_rejects_the_queue() {
    let (ctx, _) = torrent(&(0..PIECES).collect::<Vec<_>>());
    let (mut peer, task) = Scripted::connect(&ctx, addr(1102));
    peer.handshake_with(ctx.info_hash, ctx.info_hash, [12; 20], true)
        .await;
    peer.until(|m| matches!(m, Message::HaveAll).then_some(()))
        .await;
    peer.send(Message::Interested).await;
    // Choked: each request is rejected, and the connection stays.
    for (index, begin) in [(0, 0), (1, BLOCK_LEN)] {
        peer.send(Message::Request {
            index,
            begin,
            length: BLOCK_LEN,
        })
        .await;
        let rejected = peer
            .until(|m| match m {
                Message::Reject { index, begin, .. } => Some((*index, *begin)),
                _ => None,
            })
            .await;
        assert_eq!(rejected, (index, begin));
    }
    eventually(&ctx, |t| t.peer_count() > 0).await;
    for p in ctx.lock().peers() {
        p.tx.send(Command::Unchoke).unwrap();
    }
    peer.until(|m| matches!(m, Message::Unchoke).then_some(()))
        .await;
    // Unchoked: served. A cancel of a queued request is answered with a reject or the block.
    peer.send(Message::Request {
        index: 2,
        begin: 0,
        length: BLOCK_LEN,
    })
    .await;
    peer.until(|m| matches!(m, Message::Piece { index: 2, .. }).then_some(()))
        .await;
    assert!(!task.is_finished());
}

#[tokio::test(start_paused = true)]
async fn allowed_fast_pieces_are_fetched_while_choked_and_a_reject_is_not_asked_again() {
    let (ctx, data) = torrent(&[]);
    let (mut peer, _task) = Scripted::connect(&ctx, addr(1103));
    peer.handshake_with(ctx.info_hash, ctx.info_hash, [13; 20], true)
        .await;
    peer.send(Message::HaveAll).await;
    peer.send(Message::AllowedFast(4)).await;
    peer.until(|m| matches!(m, Message::Interested).then_some(()))
        .await;
    // Choked, but piece 4 is allowed: both its blocks are asked, nothing else.
    let mut asked = peer.requests(2).await;
    asked.sort_unstable();
    assert_eq!(asked, [(4, 0), (4, BLOCK_LEN)]);
    // One is served, the other rejected: the piece leaves the allowed set, not asked again.
    assert!(peer.block(&data, 4, 0, false).await);
    peer.send(Message::Reject {
        index: 4,
        begin: BLOCK_LEN,
        length: BLOCK_LEN,
    })
    .await;
    let quiet = within(&mut peer, Duration::from_secs(20)).await;
    assert_eq!(
        requests_in(&quiet),
        [],
        "nothing asked while choked after the reject"
    );
    eventually(&ctx, |t| t.picker().wants_block(block((4, BLOCK_LEN)))).await;
    // Unchoked: the rejected block is asked again with the rest, the served one never.
    peer.send(Message::Unchoke).await;
    let mut asked = Vec::new();
    while asked.len() < 11 {
        let (piece, begin) = peer.requests(1).await[0];
        assert_ne!(
            (piece, begin),
            (4, 0),
            "the served block is not asked again"
        );
        asked.push((piece, begin));
        assert!(peer.block(&data, piece, begin, false).await);
    }
    assert!(asked.contains(&(4, BLOCK_LEN)), "{asked:?}");
    eventually(&ctx, |t| t.picker().is_complete()).await;
}

#[tokio::test(start_paused = true)]
async fn a_fast_choke_keeps_our_requests_until_rejected_without_a_storm() {
    let (ctx, _) = torrent(&[]);
    let (mut peer, _task) = Scripted::connect(&ctx, addr(1104));
    peer.handshake_with(ctx.info_hash, ctx.info_hash, [14; 20], true)
        .await;
    peer.send(Message::HaveAll).await;
    peer.send(Message::Unchoke).await;
    let first = peer.requests(10).await;
    // The choke alone voids nothing (BEP 6): unchoked again, the ten still stand and nothing is
    // asked (after a BEP 3 choke the same ten would be asked again).
    peer.send(Message::Choke).await;
    let quiet = within(&mut peer, Duration::from_millis(300)).await;
    assert_eq!(requests_in(&quiet), []);
    peer.send(Message::Unchoke).await;
    let quiet = within(&mut peer, Duration::from_millis(300)).await;
    assert_eq!(requests_in(&quiet), [], "the requests survived the choke");
    // Choked and rejected: back to the picker, and nothing is asked while choked.
    peer.send(Message::Choke).await;
    for &(index, begin) in &first {
        peer.send(Message::Reject {
            index,
            begin,
            length: BLOCK_LEN,
        })
        .await;
    }
    let quiet = within(&mut peer, Duration::from_secs(20)).await;
    assert_eq!(requests_in(&quiet), [], "no re-request storm while choked");
    peer.send(Message::Unchoke).await;
    let again = peer.requests(10).await;
    assert_eq!(again, first, "asked again once unchoked, in order");
    // Rejects while unchoked (a full queue): a pause, then each block is asked again, once.
    for &(index, begin) in &again[..4] {
        peer.send(Message::Reject {
            index,
            begin,
            length: BLOCK_LEN,
        })
        .await;
    }
    let soon = within(&mut peer, Duration::from_millis(500)).await;
    assert_eq!(requests_in(&soon), [], "paused after a reject");
    let mut later = requests_in(&within(&mut peer, Duration::from_secs(2)).await);
    later.sort_unstable();
    let mut expected = again[..4].to_vec();
    expected.sort_unstable();
    assert_eq!(later, expected);
}

#[tokio::test(start_paused = true)]
async fn a_peer_without_the_bit_that_sends_have_all_is_dropped() {
    let (ctx, _) = torrent(&[]);
    let (mut peer, task) = Scripted::connect(&ctx, addr(1105));
    peer.handshake_with(ctx.info_hash, ctx.info_hash, [15; 20], false)
        .await;
    peer.send(Message::HaveAll).await;
    let end = tokio::time::timeout(PATIENCE, task)
        .await
        .expect("dropped in time")
        .unwrap();
    assert!(
        matches!(&end, Err(PeerError::Dropped(why)) if why.contains("BEP 6")),
        "{end:?}"
    );
}
