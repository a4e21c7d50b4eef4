//! The layer fetch against scripted peers over an in-memory duplex: one that serves (from the trees
//! of the `.torrent` with its layers), one that forges a hash, one that rejects, one without the v2
//! bit.

use tokio::io::DuplexStream;

use super::*;
use crate::metainfo::Metainfo;
use crate::session::hashes::Trees;
use crate::wire::handshake::V2_BIT;

const FIXTURE: &[u8] = include_bytes!("../../../../tests/data/v2/v2-multi.torrent");

/// The fixture as a magnet would give it (no `piece layers`), and as its `.torrent` has it.
fn bare_and_full() -> (Metainfo, Metainfo) {
    let full = Metainfo::from_bytes_any_version(FIXTURE).unwrap();
    let mut t = crate::bencode::decode(FIXTURE, crate::bencode::Limits::TORRENT)
        .unwrap()
        .root()
        .to_value();
    assert!(t.remove("piece layers").is_some());
    let bare = Metainfo::from_bytes_any_version(&t.encode()).unwrap();
    (bare, full)
}

fn hello(m: &Metainfo) -> Hello {
    Hello {
        info_hash: m.info_hash,
        v2_id: InfoHash([0x77; 20]),
        peer_id: PeerId([1; 20]),
        pieces: m.info.lengths.piece_count(),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Script {
    Serve,
    Forge,
    Reject,
    NoV2Bit,
    Silent,
}

/// The peer: answers our handshake, then each request as `script` says, until we hang up.
async fn peer(mut io: DuplexStream, full: Metainfo, script: Script) {
    let trees = Trees::for_info(&full.info);
    let mut hs = [0u8; HANDSHAKE_LEN];
    if io.read_exact(&mut hs).await.is_err() {
        return;
    }
    assert_eq!(hs[27] & V2_BIT, V2_BIT, "our handshake sets the v2 bit");
    let ours = Handshake::ours(full.info_hash, PeerId([9; 20])).with_v2(script != Script::NoV2Bit);
    let mut out = BytesMut::from(&ours.encode()[..]);
    // A bitfield and a hash request of its own first: both must be taken in stride.
    Message::Bitfield(crate::bitfield::Bitfield::full(hello(&full).pieces)).encode(&mut out);
    let theirs = HashRequest {
        pieces_root: [3; 32],
        base_layer: 0,
        index: 0,
        length: 2,
        proof_layers: 0,
    };
    Message::HashRequest(theirs).encode(&mut out);
    if io.write_all(&out).await.is_err() {
        return;
    }
    let mut codec = Codec::new(hello(&full).pieces).with_v2();
    let mut buf = BytesMut::new();
    loop {
        match io.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut out = BytesMut::new();
        while let Ok(Some(msg)) = codec.decode(&mut buf) {
            let Message::HashRequest(r) = msg else {
                assert_eq!(
                    msg,
                    Message::HashReject(theirs),
                    "our reject of its request"
                );
                continue;
            };
            if script == Script::Silent {
                continue;
            }
            let reply = match (script, trees.answer(&r, 0)) {
                (Script::Reject, _) => Message::HashReject(r),
                (Script::Forge, Message::Hashes(mut h)) => {
                    h.hashes[0][0] ^= 1;
                    Message::Hashes(h)
                }
                (_, reply) => reply,
            };
            reply.encode(&mut out);
        }
        if io.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Runs [`from_peer`] against a scripted peer.
async fn against(script: Script, wanted: &mut Wanted) -> Result<(), String> {
    let (bare, full) = bare_and_full();
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let task = tokio::spawn(peer(theirs, full, script));
    let result = tokio::time::timeout(2 * PEER_TIMEOUT, from_peer(ours, hello(&bare), wanted))
        .await
        .unwrap();
    task.await.expect("the scripted peer followed its script");
    result
}

#[test]
fn the_wanted_layers_are_those_of_files_larger_than_a_piece() {
    let (bare, full) = bare_and_full();
    let wanted = Wanted::for_info(&bare.info);
    let big = (0..full.info.files.len())
        .filter(|&i| full.info.piece_layer(i).is_some())
        .count();
    assert!(big > 0);
    assert_eq!(wanted.missing_files(), big);
    assert!(!wanted.is_done());
    assert!(wanted.layers().is_empty());
    assert!(
        Wanted::for_info(&full.info).is_done(),
        "a .torrent with layers wants none"
    );
}

#[tokio::test]
async fn a_serving_peer_gives_every_layer_and_they_equal_the_torrents() {
    let (bare, full) = bare_and_full();
    let mut wanted = Wanted::for_info(&bare.info);
    against(Script::Serve, &mut wanted).await.unwrap();
    assert!(wanted.is_done());
    for (root, layer) in wanted.layers() {
        let i = (0..full.info.files.len())
            .find(|&i| full.info.pieces_root(i) == Some(root))
            .unwrap();
        assert_eq!(Some(&layer[..]), full.info.piece_layer(i));
    }
}

#[tokio::test]
async fn a_peer_sending_bad_hashes_is_dropped_and_nothing_of_it_kept() {
    let (bare, _) = bare_and_full();
    let mut wanted = Wanted::for_info(&bare.info);
    let err = against(Script::Forge, &mut wanted).await.unwrap_err();
    assert!(err.contains("do not verify"), "{err}");
    assert!(wanted.layers().is_empty());
    // The next peer serves: the layers come in after all.
    against(Script::Serve, &mut wanted).await.unwrap();
    assert!(wanted.is_done());
}

#[tokio::test]
async fn a_rejecting_peer_ends_cleanly_with_the_layers_still_missing() {
    let (bare, _) = bare_and_full();
    let mut wanted = Wanted::for_info(&bare.info);
    against(Script::Reject, &mut wanted).await.unwrap();
    assert!(!wanted.is_done());
    let err = against(Script::NoV2Bit, &mut wanted).await.unwrap_err();
    assert!(err.contains("BEP 52"), "{err}");
}

#[test]
fn unasked_or_forged_replies_are_refused() {
    let (bare, full) = bare_and_full();
    let mut wanted = Wanted::for_info(&bare.info);
    let r = wanted.missing()[0];
    let Message::Hashes(good) = Trees::for_info(&full.info).answer(&r, 0) else {
        panic!("the full torrent serves its own layer");
    };
    let mut other = good.clone();
    other.request.index += r.length;
    assert_eq!(wanted.on_hashes(&other), Err("hashes we did not ask for"));
    let mut forged = good.clone();
    forged.hashes[1][3] ^= 0x80;
    assert_eq!(wanted.on_hashes(&forged), Err("hashes that do not verify"));
    assert_eq!(wanted.on_hashes(&good), Ok(()));
    assert!(!wanted.missing().contains(&r));
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_answers_nothing_is_given_up_after_the_timeout() {
    let (bare, _) = bare_and_full();
    let mut wanted = Wanted::for_info(&bare.info);
    let started = tokio::time::Instant::now();
    let err = against(Script::Silent, &mut wanted).await.unwrap_err();
    assert!(err.contains("silent"), "{err}");
    assert!(started.elapsed() >= PEER_TIMEOUT);
    assert!(!wanted.is_done());
}
