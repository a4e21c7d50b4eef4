//! Unit tests of BEP 52's hash messages: round trips through the codec, known bytes, the opt-in,
//! every shape rule and bound, and a reply made from a real tree proving its root.

use bytes::{BufMut, BytesMut};

use super::*;
use crate::merkle::MerkleTree;
use crate::wire::Codec;

fn request(length: u32, index: u32, proof_layers: u32) -> HashRequest {
    HashRequest {
        pieces_root: [0xab; 32],
        base_layer: 1,
        index,
        length,
        proof_layers,
    }
}

fn v2() -> Codec {
    Codec::new(100).with_v2()
}

fn decode_all(codec: &mut Codec, bytes: &[u8]) -> Result<Vec<Message>, WireError> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = codec.decode(&mut buf)? {
        out.push(m);
    }
    Ok(out)
}

fn encoded(m: &Message) -> BytesMut {
    let mut out = BytesMut::new();
    m.encode(&mut out);
    out
}

/// A frame of `id` with `payload`.
fn frame(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u32(1 + payload.len() as u32);
    out.put_u8(id);
    out.put_slice(payload);
    out.to_vec()
}

fn header(r: &HashRequest) -> Vec<u8> {
    let mut out = BytesMut::new();
    r.put(&mut out);
    out.to_vec()
}

#[test]
fn the_three_messages_round_trip_even_byte_by_byte() {
    let r = request(4, 8, 3);
    let hashes: Vec<Hash> = (0..4 + r.uncles()).map(|i| [i as u8; 32]).collect();
    let all = vec![
        Message::HashRequest(r),
        Message::Hashes(Hashes { request: r, hashes }),
        Message::HashReject(r),
        Message::Have(3),
    ];
    let mut wire = BytesMut::new();
    for m in &all {
        m.encode(&mut wire);
    }
    assert_eq!(decode_all(&mut v2(), &wire).unwrap(), all);
    let mut codec = v2();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in wire.iter() {
        buf.put_u8(*b);
        while let Some(m) = codec.decode(&mut buf).unwrap() {
            got.push(m);
        }
    }
    assert_eq!(got, all);
}

#[test]
fn known_wire_bytes() {
    let mut want = vec![0, 0, 0, 49, 21];
    want.extend([0xab; 32]);
    want.extend([0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 4, 0, 0, 0, 3]);
    assert_eq!(
        &encoded(&Message::HashRequest(request(4, 8, 3)))[..],
        &want[..]
    );
    want[4] = 23;
    assert_eq!(
        &encoded(&Message::HashReject(request(4, 8, 3)))[..],
        &want[..]
    );
    // `hashes`: 4 base hashes and 3 + 1 - 2 = 2 uncles.
    let r = request(4, 8, 3);
    let h = Message::Hashes(Hashes {
        request: r,
        hashes: vec![[1; 32]; 6],
    });
    let bytes = encoded(&h);
    assert_eq!(bytes.len(), 4 + 1 + 48 + 6 * 32);
    assert_eq!(&bytes[..5], &[0, 0, 0, 241, 22]);
}

#[test]
fn without_v2_they_are_skipped_as_unknown_ids() {
    let r = request(2, 0, 0);
    let mut c = Codec::new(100);
    let got = decode_all(&mut c, &encoded(&Message::HashRequest(r))).unwrap();
    assert_eq!(got, [Message::Unknown(21)]);
    // Not even checked: a v1 connection ignores what it does not speak.
    let got = decode_all(&mut c, &frame(22, &[1, 2, 3])).unwrap();
    assert_eq!(got, [Message::Unknown(22)]);
    assert!(Codec::new(100).max_frame() < MAX_FRAME);
}

#[test]
fn the_frame_limit_admits_the_longest_hashes_message() {
    assert_eq!(v2().max_frame(), MAX_FRAME);
    assert_eq!(MAX_FRAME, 1 + 48 + 32 * (512 + 42));
    // A torrent whose bitfield is longer keeps that limit.
    assert_eq!(Codec::new(1_000_000).with_v2().max_frame(), 1 + 125_000);
    let r = HashRequest {
        base_layer: 0,
        ..request(512, 1024, MAX_LAYERS)
    };
    assert_eq!(r.uncles(), 42);
    let longest = Message::Hashes(Hashes {
        request: r,
        hashes: vec![[7; 32]; 554],
    });
    let bytes = encoded(&longest);
    assert_eq!(bytes.len() as u32, 4 + MAX_FRAME);
    assert_eq!(decode_all(&mut v2(), &bytes).unwrap(), [longest]);
    let mut over = BytesMut::new();
    over.put_u32(MAX_FRAME + 1);
    assert!(matches!(
        v2().decode(&mut over),
        Err(WireError::FrameTooLong { .. })
    ));
}

#[test]
fn shape_rules() {
    let bad = |r: HashRequest, id: u8| {
        let mut payload = header(&r);
        if id == HASHES {
            // The shape is checked before the count: any few hashes will do.
            payload.extend([0u8; 4 * 32]);
        }
        match decode_all(&mut v2(), &frame(id, &payload)) {
            Err(WireError::BadHashMessage { id: got, why }) => {
                assert_eq!(got, id);
                why
            }
            other => panic!("{r:?}: {other:?}"),
        }
    };
    for id in [HASH_REQUEST, HASHES, HASH_REJECT] {
        assert_eq!(bad(request(0, 0, 0), id), "length is not a power of two");
        assert_eq!(bad(request(3, 0, 0), id), "length is not a power of two");
        assert_eq!(
            bad(request(4, 2, 0), id),
            "index is not a multiple of length"
        );
        assert_eq!(bad(request(8193, 0, 0), id), "length is not a power of two");
        let deep = HashRequest {
            base_layer: MAX_LAYERS + 1,
            ..request(2, 0, 0)
        };
        assert_eq!(bad(deep, id), "layer beyond any tree");
        assert_eq!(
            bad(request(2, 0, MAX_LAYERS + 1), id),
            "layer beyond any tree"
        );
    }
    // Requests over 512 base hashes are read (to be rejected politely), up to libtorrent's 8192.
    let big = request(1024, 0, 0);
    let got = decode_all(&mut v2(), &frame(HASH_REQUEST, &header(&big))).unwrap();
    assert_eq!(got, [Message::HashRequest(big)]);
    assert_eq!(
        bad(request(16384, 0, 0), HASH_REQUEST),
        "length is over the limit"
    );
    assert_eq!(bad(request(1024, 0, 0), HASHES), "length is over the limit");
    // One leaf at a time is allowed (libtorrent with 16 KiB pieces).
    let one = request(1, 5, 0);
    let got = decode_all(&mut v2(), &frame(HASH_REJECT, &header(&one))).unwrap();
    assert_eq!(got, [Message::HashReject(one)]);
}

#[test]
fn lengths_must_match_exactly() {
    let r = request(2, 0, 2);
    let head = header(&r);
    for id in [HASH_REQUEST, HASH_REJECT] {
        for len in [47, 49] {
            let mut payload = head.clone();
            payload.resize(len, 0);
            assert!(matches!(
                decode_all(&mut v2(), &frame(id, &payload)),
                Err(WireError::BadLength { .. })
            ));
        }
    }
    // `hashes`: 2 base + 2 uncles; one short, one extra, or a ragged tail are refused.
    for extra in [3 * 32, 5 * 32, 4 * 32 + 1, 0] {
        let mut payload = head.clone();
        payload.extend(vec![9u8; extra]);
        assert!(
            matches!(
                decode_all(&mut v2(), &frame(HASHES, &payload)),
                Err(WireError::BadLength { id: 22, .. })
            ),
            "{extra}"
        );
    }
    assert!(matches!(
        decode_all(&mut v2(), &frame(HASHES, &head[..40])),
        Err(WireError::BadLength { .. })
    ));
}

#[test]
fn a_reply_from_a_real_tree_proves_its_root() {
    // 16 leaves; ask for leaves 8..12 with proof layers up to the root (height 4).
    let leaves: Vec<Hash> = (0..16u8).map(|i| merkle::hash_block(&[i; 100])).collect();
    let tree = MerkleTree::from_leaves(leaves).unwrap();
    let r = HashRequest {
        pieces_root: tree.root(),
        base_layer: 0,
        index: 8,
        length: 4,
        proof_layers: 3,
    };
    let hashes = tree.hashes(0, 8, 4, 3).unwrap();
    assert_eq!(hashes.len() as u32, 4 + r.uncles());
    let wire = encoded(&Message::Hashes(Hashes { request: r, hashes }));
    let got = decode_all(&mut v2(), &wire).unwrap();
    let [Message::Hashes(h)] = &got[..] else {
        panic!("{got:?}");
    };
    assert_eq!(h.base().len(), 4);
    assert_eq!(h.uncles().len(), 2);
    assert_eq!(h.proven_node(), Some((4, 0, tree.root())));
    let mut forged = h.clone();
    forged.hashes[1][0] ^= 1;
    assert_ne!(forged.proven_node(), Some((4, 0, tree.root())));
}

/// A file of 5 pieces of 32 KiB (2 blocks each, the last one short) as a seeder with its `.torrent`
/// holds it: the tree above the piece layer (height 1), root at height 4 (10 blocks, padded to 16).
fn seeded() -> (Vec<u8>, MerkleTree) {
    let data: Vec<u8> = (0..5 * 32 * 1024 - 1000).map(|i| (i % 251) as u8).collect();
    let layer = merkle::piece_layer(&data, 32 * 1024).unwrap();
    let tree = MerkleTree::from_layer(layer, 1).unwrap();
    assert_eq!(Some(tree.root()), merkle::file_root(&data));
    (data, tree)
}

fn ask(tree: &MerkleTree, base_layer: u32, index: u32, length: u32, proof: u32) -> HashRequest {
    HashRequest {
        pieces_root: tree.root(),
        base_layer,
        index,
        length,
        proof_layers: proof,
    }
}

#[test]
fn the_whole_piece_layer_is_served_padded_and_proves_the_root() {
    let (data, tree) = seeded();
    // libtorrent's request for a file of 5 pieces: 8 hashes (padded), proof layers to the root.
    let r = ask(&tree, 1, 0, 8, 2);
    let Message::Hashes(h) = answer(&r, Some(&tree)) else {
        panic!("rejected");
    };
    assert_eq!(h.request, r);
    assert_eq!(
        h.uncles().len(),
        0,
        "the 8 base hashes cover the whole tree"
    );
    assert_eq!(
        &h.base()[..5],
        merkle::piece_layer(&data, 32 * 1024).unwrap()
    );
    assert!(h.base()[5..].iter().all(|p| *p == merkle::pad_hash(1)));
    assert_eq!(h.proven_node(), Some((4, 0, tree.root())));
    // Through the codec and back: the same reply.
    let got = decode_all(&mut v2(), &encoded(&Message::Hashes(h.clone()))).unwrap();
    assert_eq!(got, vec![Message::Hashes(h)]);
}

#[test]
fn a_part_of_the_layer_comes_with_the_uncles_that_tie_it_to_the_root() {
    let (_, tree) = seeded();
    for (index, length, proof) in [(4, 4, 2), (0, 4, 2), (2, 2, 2), (6, 2, 2), (3, 1, 2)] {
        let r = ask(&tree, 1, index, length, proof);
        let Message::Hashes(h) = answer(&r, Some(&tree)) else {
            panic!("{r:?} rejected");
        };
        assert_eq!(h.hashes.len() as u32, length + r.uncles(), "{r:?}");
        assert_eq!(h.proven_node(), Some((4, 0, tree.root())), "{r:?}");
    }
    // Fewer proof layers: the reply proves a lower node, which the tree holds.
    let r = ask(&tree, 1, 4, 2, 1);
    let Message::Hashes(h) = answer(&r, Some(&tree)) else {
        panic!("rejected");
    };
    assert_eq!(h.proven_node(), Some((3, 1, tree.node(3, 1).unwrap())));
}

#[test]
fn what_cannot_be_served_is_rejected_with_the_same_fields() {
    let (_, tree) = seeded();
    let other_root = HashRequest {
        pieces_root: [9; 32],
        ..ask(&tree, 1, 0, 8, 2)
    };
    let cases = [
        (other_root, "another file's root"),
        (ask(&tree, 0, 0, 2, 1), "the leaves: not held"),
        (ask(&tree, 1, 8, 8, 2), "past the padded layer"),
        (ask(&tree, 1, 16, 2, 0), "far past the layer"),
        (ask(&tree, 1, 0, 8, 3), "a proof layer at the root"),
        (ask(&tree, 1, 4, 2, 3), "an uncle above the root"),
        (ask(&tree, 1, 0, 3, 0), "length not a power of two"),
        (ask(&tree, 1, 2, 4, 0), "index not a multiple of length"),
        (ask(&tree, 1, 0, 1024, 0), "over 512 hashes"),
        (ask(&tree, 5, 0, 1, 0), "above the root"),
        (ask(&tree, 60, 0, 1, 0), "beyond any tree"),
    ];
    for (r, why) in cases {
        assert_eq!(answer(&r, Some(&tree)), Message::HashReject(r), "{why}");
    }
    let r = ask(&tree, 1, 0, 8, 2);
    assert_eq!(answer(&r, None), Message::HashReject(r), "no tree");
}

#[test]
fn the_root_alone_is_never_served() {
    // A request's uncles start at its base (one per proof layer, plus one for a single hash, as
    // libtorrent counts them), so nothing at the root's height can be asked for: the root is in
    // the `info` anyway.
    let (_, tree) = seeded();
    for proof in [0, 1] {
        let r = ask(&tree, 4, 0, 1, proof);
        assert_eq!(answer(&r, Some(&tree)), Message::HashReject(r));
    }
}

#[test]
fn layer_requests_cover_the_padded_layer_and_prove_the_root() {
    let (data, tree) = seeded();
    let root = tree.root();
    let plen = 32 * 1024;
    assert!(
        layer_requests(root, plen as u64, plen).is_empty(),
        "one piece"
    );
    assert!(layer_requests(root, 10, plen).is_empty());
    assert!(
        layer_requests(root, data.len() as u64, 1000).is_empty(),
        "bad piece length"
    );
    let asked = layer_requests(root, data.len() as u64, plen);
    assert_eq!(asked, vec![ask(&tree, 1, 0, 8, 2)]);
    // Our own server answers it, and the reply checks.
    let Message::Hashes(h) = answer(&asked[0], Some(&tree)) else {
        panic!("rejected");
    };
    let chunk = layer_chunk(&asked[0], &h).unwrap();
    assert_eq!(&chunk[..5], merkle::piece_layer(&data, plen).unwrap());
    // A forged hash, a reply to another request, or the wrong root: refused.
    let mut forged = h.clone();
    forged.hashes[2][5] ^= 1;
    assert_eq!(layer_chunk(&asked[0], &forged), None);
    let other = ask(&tree, 1, 0, 4, 2);
    let Message::Hashes(h4) = answer(&other, Some(&tree)) else {
        panic!("rejected");
    };
    assert_eq!(layer_chunk(&asked[0], &h4), None);
    let wrong_root = HashRequest {
        pieces_root: [1; 32],
        ..asked[0]
    };
    let relabelled = Hashes {
        request: wrong_root,
        hashes: h.hashes.clone(),
    };
    assert_eq!(layer_chunk(&wrong_root, &relabelled), None);
}

#[test]
fn a_layer_over_512_pieces_is_asked_in_chunks_each_proving_the_root() {
    // 1300 pieces of 16 KiB (one leaf each): padded to 2048, four requests of 512.
    let layer: Vec<Hash> = (0..1300u32)
        .map(|i| merkle::hash_block(&i.to_be_bytes()))
        .collect();
    let tree = MerkleTree::from_layer(layer.clone(), 0).unwrap();
    let asked = layer_requests(tree.root(), 1300 * 16 * 1024 - 5, 16 * 1024);
    assert_eq!(asked.len(), 4);
    let mut got = Vec::new();
    for (k, r) in asked.iter().enumerate() {
        assert_eq!((r.index, r.length, r.base_layer), (k as u32 * 512, 512, 0));
        assert_eq!(r.uncles(), 2, "2048 = 512 * 4: two uncles");
        let Message::Hashes(h) = answer(r, Some(&tree)) else {
            panic!("{r:?} rejected");
        };
        got.extend_from_slice(layer_chunk(r, &h).unwrap());
    }
    got.truncate(1300);
    assert_eq!(got, layer);
}
