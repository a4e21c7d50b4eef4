//! Scripted peers for a torrent with a v2 side (BEP 52): the reserved bit in our handshake, a
//! hybrid's two ids (a dial answered under the v2 id, an address from the v2 swarm dialled with it,
//! an incoming peer answered under the id it used), the engine's routing under both ids, a v1
//! torrent that still refuses a foreign id, and a hash request answered with a hash reject.
use super::*;
use crate::wire::handshake::V2_BIT;

/// The test torrent, made a hybrid: `v2` is its second swarm id.
fn hybrid(v2: InfoHash) -> Arc<Ctx> {
    let (ctx, _) = torrent(&[]);
    let Ok(mut ctx) = Arc::try_unwrap(ctx) else {
        unreachable!("a fresh torrent has one owner")
    };
    ctx.v2_swarm = Some(v2);
    ctx.has_v2 = true;
    Arc::new(ctx)
}

/// Reads the 68 bytes of our handshake.
async fn our_handshake(peer: &mut Scripted) -> Handshake {
    let mut hs = [0u8; 68];
    peer.io.read_exact(&mut hs).await.unwrap();
    Handshake::decode(&hs).unwrap()
}

const V2: InfoHash = InfoHash([0x52; 20]);

#[tokio::test(start_paused = true)]
async fn a_hybrid_dial_sets_the_v2_bit_and_accepts_an_upgrade_to_the_v2_id() {
    let ctx = hybrid(V2);
    let (mut peer, task) = Scripted::connect(&ctx, addr(1001));
    let ours = our_handshake(&mut peer).await;
    assert_eq!(ours.info_hash, ctx.info_hash, "dialled under the v1 id");
    assert_eq!(ours.reserved[7] & V2_BIT, V2_BIT);
    // The peer answers with the truncated v2 id (BEP 52's upgrade): the connection goes on.
    peer.io
        .write_all(&Handshake::ours(V2, PeerId([1; 20])).encode())
        .await
        .unwrap();
    peer.send(Message::Bitfield(Bitfield::full(PIECES))).await;
    peer.until(|m| matches!(m, Message::Interested).then_some(()))
        .await;
    ctx.shutdown.send_replace(true);
    let _ = task.await;
}

#[tokio::test(start_paused = true)]
async fn an_address_from_the_v2_swarm_is_dialled_with_the_v2_id() {
    let ctx = hybrid(V2);
    assert_eq!(ctx.lock().tracker_answered(&[addr(1002)], true), 1);
    let (mut peer, task) = Scripted::connect(&ctx, addr(1002));
    let ours = our_handshake(&mut peer).await;
    assert_eq!(ours.info_hash, V2);
    assert!(ours.supports_v2());
    peer.io
        .write_all(&Handshake::ours(V2, PeerId([2; 20])).encode())
        .await
        .unwrap();
    peer.send(Message::Bitfield(Bitfield::full(PIECES))).await;
    peer.until(|m| matches!(m, Message::Interested).then_some(()))
        .await;
    ctx.shutdown.send_replace(true);
    let _ = task.await;
}

#[tokio::test(start_paused = true)]
async fn an_incoming_peer_is_answered_under_the_id_it_used() {
    let ctx = hybrid(V2);
    for (port, id) in [(1003, V2), (1004, ctx.info_hash)] {
        let (ours_io, theirs_io) = tokio::io::duplex(1 << 20);
        let theirs = Handshake::ours(id, PeerId([port as u8; 20])).encode();
        let slot = link::Incoming::claim(&mut ctx.lock());
        let task = tokio::spawn(link::accept(ctx.clone(), ours_io, addr(port), slot, theirs));
        let mut peer = Scripted {
            io: theirs_io,
            codec: Codec::new(PIECES),
            buf: BytesMut::new(),
        };
        let ours = our_handshake(&mut peer).await;
        assert_eq!(ours.info_hash, id, "port {port}");
        assert!(ours.supports_v2());
        peer.send(Message::Bitfield(Bitfield::full(PIECES))).await;
        peer.until(|m| matches!(m, Message::Interested).then_some(()))
            .await;
        drop(peer);
        let _ = task.await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_v1_torrent_has_no_v2_bit_and_refuses_another_id() {
    let (ctx, _) = torrent(&[]);
    let (mut peer, task) = Scripted::connect(&ctx, addr(1005));
    let ours = our_handshake(&mut peer).await;
    assert!(!ours.supports_v2());
    peer.io
        .write_all(&Handshake::ours(V2, PeerId([5; 20])).encode())
        .await
        .unwrap();
    let ended = tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    assert!(ended.is_err(), "a handshake for another torrent ends it");
    assert_eq!(ctx.lock().peer_count(), 0);
}

#[tokio::test]
async fn the_engine_routes_a_hybrid_under_both_ids_and_counts_it_once() {
    let ctx = hybrid(V2);
    let engine = ctx.engine.clone();
    engine.attach(ctx.clone());
    for id in [ctx.info_hash, V2] {
        assert!(engine.torrent(&id).is_some_and(|c| Arc::ptr_eq(&c, &ctx)));
    }
    ctx.lock().claim_incoming();
    assert_eq!(engine.connections(), 1, "one torrent, one connection");
    engine.detach(&ctx.info_hash);
    assert!(engine.torrent(&ctx.info_hash).is_none());
    assert!(engine.torrent(&V2).is_none(), "both ids forgotten");
}

#[tokio::test(start_paused = true)]
async fn a_hash_request_is_answered_with_a_hash_reject_of_the_same_fields() {
    let ctx = hybrid(V2);
    let (mut peer, task) = Scripted::connect(&ctx, addr(1005));
    peer.codec = Codec::new(PIECES).with_v2();
    let _ = our_handshake(&mut peer).await;
    peer.io
        .write_all(&Handshake::ours(ctx.info_hash, PeerId([5; 20])).encode())
        .await
        .unwrap();
    let request = crate::wire::hashes::HashRequest {
        pieces_root: [7; 32],
        base_layer: 0,
        index: 4,
        length: 4,
        proof_layers: 1,
    };
    peer.send(Message::HashRequest(request)).await;
    let rejected = peer
        .until(|m| match m {
            Message::HashReject(r) => Some(*r),
            _ => None,
        })
        .await;
    assert_eq!(rejected, request);
    ctx.shutdown.send_replace(true);
    let _ = task.await;
}

#[tokio::test(start_paused = true)]
async fn a_hash_request_for_a_held_layer_is_answered_with_hashes_that_prove_the_root() {
    let ctx = hybrid(V2);
    // A file of 6 pieces of 32 KiB: its piece layer (height 1) and tree, as a `.torrent` gives it.
    let data: Vec<u8> = (0..6 * 32 * 1024).map(|i| (i % 253) as u8).collect();
    let layer = crate::merkle::piece_layer(&data, 32 * 1024).unwrap();
    let tree = crate::merkle::MerkleTree::from_layer(layer.clone(), 1).unwrap();
    let root = tree.root();
    ctx.trees.insert(tree);
    let (mut peer, task) = Scripted::connect(&ctx, addr(1006));
    peer.codec = Codec::new(PIECES).with_v2();
    let _ = our_handshake(&mut peer).await;
    peer.io
        .write_all(&Handshake::ours(ctx.info_hash, PeerId([6; 20])).encode())
        .await
        .unwrap();
    let good = crate::wire::hashes::HashRequest {
        pieces_root: root,
        base_layer: 1,
        index: 4,
        length: 4,
        proof_layers: 2,
    };
    let leaves = crate::wire::hashes::HashRequest {
        base_layer: 0,
        ..good
    };
    peer.send(Message::HashRequest(good)).await;
    peer.send(Message::HashRequest(leaves)).await;
    let hashes = peer
        .until(|m| match m {
            Message::Hashes(h) => Some(h.clone()),
            _ => None,
        })
        .await;
    assert_eq!(hashes.request, good);
    assert_eq!(&hashes.base()[..2], &layer[4..]);
    assert_eq!(hashes.proven_node(), Some((4, 0, root)));
    let rejected = peer
        .until(|m| match m {
            Message::HashReject(r) => Some(*r),
            _ => None,
        })
        .await;
    assert_eq!(rejected, leaves, "leaves are not held: rejected");
    ctx.shutdown.send_replace(true);
    let _ = task.await;
}

#[tokio::test(start_paused = true)]
async fn an_address_from_a_dht_lookup_of_the_v2_id_is_dialled_with_it() {
    let ctx = hybrid(V2);
    assert_eq!(ctx.lock().dht_result(&[addr(1007)], false, true), 1);
    let (mut peer, task) = Scripted::connect(&ctx, addr(1007));
    let ours = our_handshake(&mut peer).await;
    assert_eq!(
        ours.info_hash, V2,
        "a peer of the v2 swarm is dialled with the v2 id"
    );
    drop(peer);
    let _ = task.await;
    // One of the v1 lookup: the v1 id.
    assert_eq!(ctx.lock().dht_result(&[addr(1008)], true, false), 1);
    let (mut peer, task) = Scripted::connect(&ctx, addr(1008));
    assert_eq!(our_handshake(&mut peer).await.info_hash, ctx.info_hash);
    drop(peer);
    let _ = task.await;
}

#[tokio::test(start_paused = true)]
async fn leaf_hashes_are_served_from_a_piece_we_hold_within_the_budget() {
    let (ctx, data) = torrent(&[0, 1, 2]);
    // The test torrent's one file as a v2 file: 6 pieces of 2 blocks, its tree 4 layers tall.
    let layer = crate::merkle::piece_layer(&data, PIECE_LEN).unwrap();
    let tree = crate::merkle::MerkleTree::from_layer(layer, 1).unwrap();
    let root = tree.root();
    let Ok(mut owned) = Arc::try_unwrap(ctx) else {
        unreachable!("a fresh torrent has one owner")
    };
    owned.has_v2 = true;
    owned.trees = crate::session::hashes::Trees::one_file(tree, data.len() as u64, PIECE_LEN);
    let ctx = Arc::new(owned);
    let (mut peer, task) = Scripted::connect(&ctx, addr(1007));
    peer.codec = Codec::new(PIECES).with_v2();
    let _ = our_handshake(&mut peer).await;
    peer.io
        .write_all(&Handshake::ours(ctx.info_hash, PeerId([7; 20])).encode())
        .await
        .unwrap();
    let leaves = |index, proof_layers| crate::wire::hashes::HashRequest {
        pieces_root: root,
        base_layer: 0,
        index,
        length: 2,
        proof_layers,
    };
    // Piece 2's two blocks, with the uncles up to just below the root.
    peer.send(Message::HashRequest(leaves(4, 3))).await;
    let hashes = peer
        .until(|m| match m {
            Message::Hashes(h) => Some(h.clone()),
            _ => None,
        })
        .await;
    let want: Vec<_> =
        crate::merkle::leaf_hashes(&data[4 * BLOCK_LEN as usize..][..2 * BLOCK_LEN as usize]);
    assert_eq!(hashes.base(), &want[..]);
    assert_eq!(hashes.proven_node(), Some((4, 0, root)));
    // Piece 3 is not ours: rejected.
    peer.send(Message::HashRequest(leaves(6, 0))).await;
    let rejected = peer
        .until(|m| match m {
            Message::HashReject(r) => Some(*r),
            _ => None,
        })
        .await;
    assert_eq!(rejected, leaves(6, 0));
    // The budget: 16 answers per window in all, the two above included; then rejects.
    let mut served = 0;
    for _ in 0..crate::session::hashes::LEAF_ANSWERS {
        peer.send(Message::HashRequest(leaves(0, 0))).await;
        match peer
            .until(|m| match m {
                Message::Hashes(_) => Some(true),
                Message::HashReject(_) => Some(false),
                _ => None,
            })
            .await
        {
            true => served += 1,
            false => break,
        }
    }
    assert_eq!(served, crate::session::hashes::LEAF_ANSWERS - 2);
    ctx.shutdown.send_replace(true);
    let _ = task.await;
}
