//! Scripted peers for the BEP 10 extensions: `ut_metadata` served to a magnet peer (and refused
//! past its allowance), and `ut_pex` both ways, public and private.
use super::*;

/// Asks the session for metadata piece `piece` (its `ut_metadata` id is `their_id`; ours is 3) and
/// returns the reply's payload.
async fn ask_metadata(peer: &mut Scripted, their_id: u8, piece: u32) -> bytes::Bytes {
    use crate::wire::ut_metadata::MetadataMessage;
    let req = MetadataMessage::Request { piece }.encode();
    peer.send(Message::Extended {
        id: their_id,
        payload: req.into(),
    })
    .await;
    peer.until(|m| match m {
        Message::Extended { id: 3, payload } => Some(payload.clone()),
        _ => None,
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn serves_its_metadata_to_a_peer_that_came_by_magnet() {
    use crate::wire::ut_metadata::{MetadataAssembler, MetadataMessage, Progress};
    let (ctx, _) = torrent(&(0..PIECES).collect::<Vec<_>>());
    let (mut peer, _task) = Scripted::connect(&ctx, addr(1010));
    peer.handshake_for(ctx.info_hash, ctx.info_hash, [10; 20])
        .await;
    let ours = peer
        .until(|m| match m {
            Message::Extended { id: 0, payload } => {
                crate::wire::extension::ExtHandshake::parse(payload)
            }
            _ => None,
        })
        .await;
    let size = ours.metadata_size.expect("metadata_size offered");
    let their_id = ours
        .m
        .iter()
        .find(|(n, _)| n == "ut_metadata")
        .map(|(_, id)| *id)
        .expect("ut_metadata offered");
    assert_eq!(size, ctx.info_bytes.len() as u64);
    peer.send(Message::Extended {
        id: 0,
        payload: b"d1:md11:ut_metadatai3eee".to_vec().into(),
    })
    .await;
    let mut asm = MetadataAssembler::new(ctx.info_hash, size as i64).unwrap();
    assert!(asm.add_source(1u8, size as i64));
    let now = crate::session::now();
    let info = loop {
        let piece = asm.next_request(1u8, now).expect("a piece to ask for");
        let reply = ask_metadata(&mut peer, their_id, piece).await;
        let Ok(MetadataMessage::Data {
            piece,
            total_size,
            data,
        }) = MetadataMessage::parse(&reply)
        else {
            panic!("not a data message");
        };
        match asm.on_data(1u8, piece, total_size, data) {
            Ok(Progress::Complete { info, .. }) => break info,
            Ok(_) => {}
            Err(e) => panic!("{e:?}"),
        }
    };
    assert_eq!(
        &info[..],
        &ctx.info_bytes[..],
        "the exact info dictionary, verified by hash"
    );
    // Past its allowance (4 asks per piece) a peer is refused.
    let mut rejected = false;
    for _ in 0..8 {
        let reply = ask_metadata(&mut peer, their_id, 0).await;
        rejected |= matches!(
            MetadataMessage::parse(&reply),
            Ok(MetadataMessage::Reject { piece: 0 })
        );
    }
    assert!(rejected, "endless requests are refused");
}

/// The extended handshake we sent, read off the connection.
async fn our_ext_handshake(peer: &mut Scripted) -> crate::wire::extension::ExtHandshake {
    peer.until(|m| match m {
        Message::Extended { id: 0, payload } => {
            crate::wire::extension::ExtHandshake::parse(payload)
        }
        _ => None,
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn peer_exchange_feeds_the_pool_and_tells_peers_of_each_other() {
    use crate::session::pool::PeerSource;
    use crate::wire::pex::{PexFlags, PexMessage};
    let (ctx, _) = torrent(&[]);
    let (mut a, _ta) = Scripted::connect(&ctx, addr(1011));
    a.handshake_for(ctx.info_hash, ctx.info_hash, [11; 20])
        .await;
    let ours = our_ext_handshake(&mut a).await;
    let pex_id = ours
        .m
        .iter()
        .find(|(n, _)| n == "ut_pex")
        .map(|(_, id)| *id);
    assert_eq!(pex_id, Some(1), "ut_pex offered");
    a.send(Message::Extended {
        id: 0,
        payload: b"d1:md6:ut_pexi5eee".to_vec().into(),
    })
    .await;
    // A second peer connects: A must hear of it.
    let (mut b, _tb) = Scripted::connect(&ctx, addr(1012));
    b.handshake_for(ctx.info_hash, ctx.info_hash, [12; 20])
        .await;
    let told = a
        .until(|m| match m {
            Message::Extended { id: 5, payload } => PexMessage::parse(payload).ok(),
            _ => None,
        })
        .await;
    assert!(
        told.added
            .iter()
            .any(|(p, f)| *p == addr(1012) && f.is_reachable()),
        "{told:?}"
    );
    assert!(
        told.added.iter().all(|(p, _)| *p != addr(1011)),
        "never the receiver itself"
    );
    // What A tells us goes to the pool, tagged as PEX; our own address is left out.
    let msg = PexMessage {
        added: vec![
            (addr(2001), PexFlags::SEED),
            (addr(2002), PexFlags::NONE),
            (SocketAddr::from(([127, 0, 0, 1], ctx.port)), PexFlags::NONE),
        ],
        dropped: Vec::new(),
    };
    a.send(Message::Extended {
        id: 1,
        payload: msg.encode().into(),
    })
    .await;
    eventually(&ctx, |t| t.pool().source(&addr(2002)).is_some()).await;
    let t = ctx.lock();
    assert_eq!(t.pool().source(&addr(2001)), Some(PeerSource::Pex));
    assert_eq!(t.pool().source(&addr(2002)), Some(PeerSource::Pex));
}

#[tokio::test(start_paused = true)]
async fn a_private_torrent_neither_offers_nor_takes_peer_exchange() {
    use crate::wire::pex::{PexFlags, PexMessage};
    let (ctx, _) = build(&[], true);
    let (mut a, _ta) = Scripted::connect(&ctx, addr(1013));
    a.handshake_for(ctx.info_hash, ctx.info_hash, [13; 20])
        .await;
    let ours = our_ext_handshake(&mut a).await;
    assert!(ours.m.iter().all(|(n, _)| n != "ut_pex"), "{:?}", ours.m);
    a.send(Message::Extended {
        id: 0,
        payload: b"d1:md6:ut_pexi5eee".to_vec().into(),
    })
    .await;
    let (mut b, _tb) = Scripted::connect(&ctx, addr(1014));
    b.handshake_for(ctx.info_hash, ctx.info_hash, [14; 20])
        .await;
    // A PEX message sent anyway (under our would-be id) is ignored.
    let msg = PexMessage {
        added: vec![(addr(2003), PexFlags::NONE)],
        dropped: Vec::new(),
    };
    a.send(Message::Extended {
        id: 1,
        payload: msg.encode().into(),
    })
    .await;
    // Two minutes of paused time: no PEX message to A, nothing added from it.
    let heard = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match a.recv().await {
                Some(Message::Extended { id: 5, .. }) => return true,
                Some(_) => {}
                None => return false,
            }
        }
    })
    .await;
    assert!(!matches!(heard, Ok(true)), "a PEX message was sent");
    assert_eq!(ctx.lock().pool().source(&addr(2003)), None);
}
