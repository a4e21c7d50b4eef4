//! Per-block blame on a v2 torrent, with scripted peers: one peer sends a bad block of a piece
//! another peer completes; the honest one answers our `hash request` for the piece's leaves, and
//! only the liar is struck. The file ends up right.
use super::*;
use crate::merkle;
use crate::wire::hashes::Hashes;

/// The test torrent, made v2-only: one file, each piece checked against its piece-layer hash.
fn v2_torrent() -> (Arc<Ctx>, Vec<u8>) {
    let (ctx, data) = torrent(&[]);
    let Ok(mut ctx) = Arc::try_unwrap(ctx) else {
        unreachable!("a fresh torrent has one owner")
    };
    let layer = merkle::piece_layer(&data, PIECE_LEN).unwrap();
    let root = merkle::root_from_piece_layer(&layer, PIECE_LEN).unwrap();
    ctx.check = Arc::new(crate::storage::PieceCheck::v2_one_file(
        root, &layer, PIECE_LEN,
    ));
    ctx.has_v2 = true;
    (Arc::new(ctx), data)
}

#[tokio::test(start_paused = true)]
async fn a_bad_block_is_blamed_on_its_sender_alone_and_the_file_is_right() {
    let (ctx, data) = v2_torrent();
    // The liar has piece 0 only; it sends that piece's first block wrong, then chokes us, so the
    // second block comes from the honest seeder.
    let (mut liar, liar_task) = Scripted::connect(&ctx, addr(1001));
    liar.codec = Codec::new(PIECES).with_v2();
    liar.handshake_for(ctx.info_hash, ctx.info_hash, [1; 20])
        .await;
    let mut only0 = Bitfield::new(PIECES);
    only0.set(0);
    liar.send(Message::Bitfield(only0)).await;
    liar.until(|m| matches!(m, Message::Interested).then_some(()))
        .await;
    liar.send(Message::Unchoke).await;
    let asked = liar.requests(2).await;
    assert_eq!(asked, vec![(0, 0), (0, BLOCK_LEN)]);
    assert!(liar.block(&data, 0, 0, true).await);
    liar.send(Message::Choke).await;
    let (mut honest, honest_task) = Scripted::seeder(&ctx, addr(1002), [2; 20]).await;
    honest.codec = Codec::new(PIECES).with_v2();
    let mut leaf_requests = 0;
    let served = tokio::time::timeout(PATIENCE, async {
        while !ctx.lock().picker().is_complete() {
            let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(1), honest.recv()).await
            else {
                continue;
            };
            match m {
                Message::Request { index, begin, .. } => {
                    assert!(honest.block(&data, index, begin, false).await);
                }
                Message::HashRequest(r) => {
                    leaf_requests += 1;
                    assert_eq!((r.base_layer, r.length, r.proof_layers), (0, 2, 0));
                    let at = r.index as usize * BLOCK_LEN as usize;
                    let leaves = merkle::leaf_hashes(&data[at..at + PIECE_LEN as usize]);
                    honest
                        .send(Message::Hashes(Hashes {
                            request: r,
                            hashes: leaves,
                        }))
                        .await;
                }
                _ => {}
            }
        }
    })
    .await;
    assert!(served.is_ok(), "the download completes in time");
    assert_eq!(leaf_requests, 1, "one hash request, for the failed piece");
    eventually(&ctx, |t| t.strikes(&addr(1001)) == 1).await;
    assert_eq!(
        ctx.lock().strikes(&addr(1002)),
        0,
        "the honest peer is not struck"
    );
    assert!(ctx.blame.is_empty());
    let mut all = vec![0u8; data.len()];
    for i in 0..PIECES {
        let p = ctx.lengths.piece(i).unwrap();
        let at = (i * PIECE_LEN) as usize;
        ctx.storage
            .read(p, 0, &mut all[at..at + PIECE_LEN as usize])
            .unwrap();
    }
    assert_eq!(all, data, "the file is right");
    ctx.shutdown.send_replace(true);
    let _ = liar_task.await;
    let _ = honest_task.await;
}
