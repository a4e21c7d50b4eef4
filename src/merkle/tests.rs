//! Unit tests of the Merkle tree: padding, roots of every file shape, piece layers, proofs and the
//! `hashes` reply, each checked against trees written out by hand.

use super::*;

const B: usize = BLOCK_LEN as usize;

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i / B) as u8)
        .collect()
}

fn sha(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

fn h(l: &Hash, r: &Hash) -> Hash {
    let mut both = l.to_vec();
    both.extend_from_slice(r);
    sha(&both)
}

#[test]
fn padding_hashes_climb_from_zero_leaves() {
    assert_eq!(pad_hash(0), ZERO);
    assert_eq!(pad_hash(1), sha(&[0u8; 64]));
    assert_eq!(pad_hash(2), h(&pad_hash(1), &pad_hash(1)));
    assert_eq!(pad_hash(3), hash_pair(&pad_hash(2), &pad_hash(2)));
}

#[test]
fn heights() {
    let cases = [
        (0, 0),
        (1, 0),
        (2, 1),
        (3, 2),
        (4, 2),
        (5, 3),
        (512, 9),
        (513, 10),
    ];
    for (count, height) in cases {
        assert_eq!(height_for(count), height, "{count}");
    }
    assert_eq!(height_for((1 << 40) + 1), 41);
    assert_eq!(height_for(u64::MAX), 64);
    assert_eq!(piece_height(16384), Some(0));
    assert_eq!(piece_height(32768), Some(1));
    assert_eq!(piece_height(1 << 20), Some(6));
    for bad in [0, 8192, 20000, 49152] {
        assert_eq!(piece_height(bad), None, "{bad}");
    }
    assert_eq!(block_count(0), 0);
    assert_eq!(block_count(1), 1);
    assert_eq!(block_count(16384), 1);
    assert_eq!(block_count(16385), 2);
}

#[test]
fn a_single_block_file_is_its_own_root() {
    let d = data(5, 1);
    assert_eq!(file_root(&d), Some(sha(&d)));
    let d = data(B, 2);
    assert_eq!(file_root(&d), Some(sha(&d)));
}

#[test]
fn a_zero_length_file_has_no_root() {
    assert_eq!(file_root(&[]), None);
    assert_eq!(piece_layer(&[], 32768), Some(vec![]));
    assert_eq!(MerkleTree::from_leaves(vec![]), None);
}

#[test]
fn the_last_block_is_short_and_missing_leaves_are_zero() {
    // 3 blocks, the last of 100 bytes: leaves l0 l1 l2 0.
    let d = data(2 * B + 100, 3);
    let l: Vec<Hash> = d.chunks(B).map(sha).collect();
    assert_eq!(l.len(), 3);
    let root = h(&h(&l[0], &l[1]), &h(&l[2], &ZERO));
    assert_eq!(file_root(&d), Some(root));
}

#[test]
fn higher_layers_pad_with_hashes_of_zero_subtrees() {
    // 5 blocks: 8 leaves, the right half is l4 0 0 0.
    let d = data(4 * B + 1, 4);
    let l: Vec<Hash> = d.chunks(B).map(sha).collect();
    let left = h(&h(&l[0], &l[1]), &h(&l[2], &l[3]));
    let right = h(&h(&l[4], &ZERO), &h(&ZERO, &ZERO));
    assert_eq!(file_root(&d), Some(h(&left, &right)));
    // The right half's upper padding is pad_hash(1), not zero.
    assert_eq!(h(&ZERO, &ZERO), pad_hash(1));
}

#[test]
fn the_piece_layer_and_its_root() {
    // 70,000 bytes in 32 KiB pieces: 3 pieces of 2 blocks; the last holds 4,464 bytes (1 block).
    let d = data(70_000, 5);
    let l: Vec<Hash> = d.chunks(B).map(sha).collect();
    let layer = piece_layer(&d, 32768).unwrap();
    assert_eq!(layer, [h(&l[0], &l[1]), h(&l[2], &l[3]), h(&l[4], &ZERO)]);
    let root = file_root(&d).unwrap();
    assert_eq!(root_from_piece_layer(&layer, 32768), Some(root));
    // The layer is padded with the hash of a zero piece, two leaves high.
    assert_eq!(
        root,
        h(&h(&layer[0], &layer[1]), &h(&layer[2], &pad_hash(1)))
    );
    assert_eq!(piece_root_height(70_000, 32768), Some(1));
    for (i, piece) in d.chunks(32768).enumerate() {
        assert_eq!(piece_root(piece, 1), Some(layer[i]), "piece {i}");
    }
    // A truncated or altered layer no longer reaches the root.
    assert_ne!(root_from_piece_layer(&layer[..2], 32768), Some(root));
    let mut bad = layer.clone();
    bad[1][0] ^= 1;
    assert_ne!(root_from_piece_layer(&bad, 32768), Some(root));
    assert_eq!(root_from_piece_layer(&layer, 30000), None);
}

#[test]
fn the_16k_piece_layer_is_the_leaf_layer() {
    let d = data(3 * B + 7, 6);
    let layer = piece_layer(&d, 16384).unwrap();
    assert_eq!(layer, leaf_hashes(&d));
    assert_eq!(root_from_piece_layer(&layer, 16384), file_root(&d));
}

#[test]
fn a_file_of_at_most_one_piece_is_checked_against_its_root() {
    // 3 blocks in 128 KiB pieces: no piece layer; the tree has 4 leaves, not 8.
    let d = data(2 * B + 9, 7);
    assert_eq!(piece_layer(&d, 131_072), Some(vec![]));
    assert_eq!(piece_root_height(d.len() as u64, 131_072), Some(2));
    assert_eq!(piece_root(&d, 2), file_root(&d));
    assert_ne!(piece_root(&d, 3), file_root(&d));
    // Exactly one piece: still no entry, and the piece root is the file root.
    let d = data(32768, 8);
    assert_eq!(piece_layer(&d, 32768), Some(vec![]));
    assert_eq!(piece_root_height(32768, 32768), Some(1));
    assert_eq!(piece_root(&d, 1), file_root(&d));
    // More leaves than the subtree holds.
    assert_eq!(piece_root(&data(3 * B, 9), 1), None);
}

#[test]
fn subtree_bounds() {
    assert_eq!(subtree_root(&[], 2, 1), Some(pad_hash(3)));
    assert_eq!(subtree_root(&[ZERO; 3], 0, 1), None);
    assert_eq!(subtree_root(&[ZERO], MAX_HEIGHT, 1), None);
    assert_eq!(subtree_root(&[ZERO], 0, 0), Some(ZERO));
}

/// An 8-block file in 64 KiB pieces (4 blocks each): two pieces.
fn eight_blocks() -> (Vec<Hash>, MerkleTree) {
    let d = data(8 * B, 10);
    let leaves = leaf_hashes(&d);
    let tree = MerkleTree::from_leaves(leaves.clone()).unwrap();
    assert_eq!(Some(tree.root()), file_root(&d));
    (leaves, tree)
}

#[test]
fn tree_nodes_and_layers() {
    let (leaves, tree) = eight_blocks();
    assert_eq!(tree.height(), 3);
    assert_eq!(tree.base(), 0);
    assert_eq!(tree.layer(0), Some(&leaves[..]));
    assert_eq!(tree.layer(3), Some(&[tree.root()][..]));
    assert_eq!(tree.layer(4), None);
    assert_eq!(tree.node(1, 0), Some(h(&leaves[0], &leaves[1])));
    assert_eq!(tree.node(0, 8), None);
    // A 5-leaf tree: leaves 5..8 and node (1, 3) are padding.
    let five = MerkleTree::from_leaves(leaves[..5].to_vec()).unwrap();
    assert_eq!(five.height(), 3);
    assert_eq!(five.node(0, 6), Some(ZERO));
    assert_eq!(five.node(1, 3), Some(pad_hash(1)));
    assert_eq!(five.layer(1).map(<[_]>::len), Some(3));
    // Built from its piece layer (height 2), the tree has the same root.
    let pieces = tree.layer(2).unwrap().to_vec();
    let upper = MerkleTree::from_layer(pieces, 2).unwrap();
    assert_eq!(upper.root(), tree.root());
    assert_eq!(upper.height(), 3);
    assert_eq!(upper.node(0, 0), None, "below the layers held");
}

#[test]
fn a_block_verifies_against_its_piece_hash_and_a_flipped_one_fails() {
    let (leaves, tree) = eight_blocks();
    let piece_hash = tree.node(2, 1).unwrap();
    for i in 4..8u64 {
        let proof = [
            tree.node(0, i ^ 1).unwrap(),
            tree.node(1, (i >> 1) ^ 1).unwrap(),
        ];
        let leaf = leaves[i as usize];
        assert!(verify_block(leaf, i - 4, &proof, &piece_hash), "block {i}");
        let mut flipped = leaf;
        flipped[31] ^= 0x80;
        assert!(!verify_block(flipped, i - 4, &proof, &piece_hash));
        let mut bad_proof = proof;
        bad_proof[1][0] ^= 1;
        assert!(!verify_block(leaf, i - 4, &bad_proof, &piece_hash));
        assert!(
            !verify_block(leaf, (i - 4) ^ 1, &proof, &piece_hash),
            "wrong index"
        );
    }
    // Climbing the whole way gives the root.
    let proof: Vec<Hash> = (0..3)
        .map(|k| tree.node(k, (5 >> k) ^ 1).unwrap())
        .collect();
    assert_eq!(root_from_proof(leaves[5], 5, &proof), tree.root());
}

#[test]
fn uncle_counts_leave_out_the_layers_inside_the_request() {
    assert_eq!(uncle_count(2, 0), 0);
    assert_eq!(uncle_count(2, 3), 3);
    assert_eq!(uncle_count(4, 0), 0);
    assert_eq!(uncle_count(4, 2), 1);
    assert_eq!(uncle_count(512, 8), 0);
    assert_eq!(uncle_count(512, 9), 1);
    assert_eq!(uncle_count(1, 0), 1);
    assert_eq!(uncle_count(2, u32::MAX), u32::MAX - 1);
}

#[test]
fn hashes_replies_prove_the_root() {
    let (leaves, tree) = eight_blocks();
    // Blocks 4..8 (piece 1) with proof layers up to the root: one uncle, node (2, 0).
    let reply = tree.hashes(0, 4, 4, 2).unwrap();
    assert_eq!(reply[..4], leaves[4..8]);
    assert_eq!(reply[4..], [tree.node(2, 0).unwrap()]);
    let (base, uncles) = reply.split_at(4);
    assert_eq!(proven_node(0, 4, base, uncles), Some((3, 0, tree.root())));
    // Without proof layers the reply proves the piece node only.
    let reply = tree.hashes(0, 4, 4, 1).unwrap();
    assert_eq!(reply.len(), 4);
    assert_eq!(
        proven_node(0, 4, &reply, &[]),
        Some((2, 1, tree.node(2, 1).unwrap()))
    );
    // Two leaves need an uncle per layer above their parent.
    let reply = tree.hashes(0, 6, 2, 2).unwrap();
    assert_eq!(reply.len(), 4);
    let (base, uncles) = reply.split_at(2);
    assert_eq!(proven_node(0, 6, base, uncles), Some((3, 0, tree.root())));
    // A corrupted base hash proves some other node.
    let mut bad = reply.clone();
    bad[0][0] ^= 1;
    assert_ne!(
        proven_node(0, 6, &bad[..2], &bad[2..]).map(|n| n.2),
        Some(tree.root())
    );
}

#[test]
fn hashes_replies_include_padding_past_the_data() {
    // 3 pieces of 2 blocks, the piece layer asked for 4 at a time: the 4th is a zero piece.
    let d = data(70_000, 11);
    let layer = piece_layer(&d, 32768).unwrap();
    let tree = MerkleTree::from_layer(layer.clone(), 1).unwrap();
    assert_eq!(Some(tree.root()), file_root(&d));
    let reply = tree.hashes(1, 0, 4, 0).unwrap();
    assert_eq!(reply[..3], layer[..]);
    assert_eq!(reply[3], pad_hash(1));
    assert_eq!(proven_node(1, 0, &reply, &[]), Some((3, 0, tree.root())));
}

#[test]
fn hashes_requests_a_tree_cannot_serve() {
    let (_, tree) = eight_blocks();
    assert_eq!(
        tree.hashes(0, 2, 4, 0),
        None,
        "index not a multiple of length"
    );
    assert_eq!(tree.hashes(0, 0, 3, 0), None, "length not a power of two");
    assert_eq!(tree.hashes(0, 0, 0, 0), None);
    assert_eq!(tree.hashes(0, 8, 2, 0), None, "past the last leaf");
    assert_eq!(tree.hashes(0, 0, 16, 0), None, "wider than the tree");
    assert_eq!(tree.hashes(0, 0, 2, 3), None, "proof layers past the root");
    assert!(tree.hashes(0, 0, 2, 2).is_some());
    assert_eq!(tree.hashes(4, 0, 1, 0), None, "above the root");
    assert_eq!(tree.hashes(0, u64::MAX - 1, 2, 0), None);
    let upper = MerkleTree::from_layer(tree.layer(2).unwrap().to_vec(), 2).unwrap();
    assert_eq!(upper.hashes(0, 0, 2, 0), None, "below the layers held");
    assert_eq!(proven_node(0, 1, &[ZERO; 2], &[]), None);
    assert_eq!(proven_node(0, 0, &[ZERO; 3], &[]), None);
    assert_eq!(proven_node(MAX_HEIGHT, 0, &[ZERO; 2], &[]), None);
}

/// A leaf-layer reply served from one piece's data equals the reply of the file's whole tree, for
/// every request shape inside that piece, in files of one piece, of whole pieces and with a short
/// last piece; anything outside the piece, or data that is not the piece, is refused.
#[test]
fn leaf_replies_from_one_piece_equal_the_whole_trees() {
    let block = BLOCK_LEN as usize;
    let piece_length = 4 * BLOCK_LEN;
    let mut served = 0;
    for len in [block / 2, 3 * block, 8 * block, 9 * block + 100, 13 * block] {
        let bytes = data(len, len as u8);
        let full = MerkleTree::from_leaves(leaf_hashes(&bytes)).unwrap();
        let pieces = len.div_ceil(piece_length as usize);
        let (piece_height, upper) = if pieces > 1 {
            let layer = piece_layer(&bytes, piece_length).unwrap();
            let h = piece_height(piece_length).unwrap();
            (h, MerkleTree::from_layer(layer, h))
        } else {
            (piece_root_height(len as u64, piece_length).unwrap(), None)
        };
        let per_piece = 1u64 << piece_height;
        for p in 0..pieces as u64 {
            let span = per_piece as usize * block;
            let chunk = &bytes[p as usize * span..((p as usize + 1) * span).min(len)];
            let leaves = leaf_hashes(chunk);
            let expected = match &upper {
                Some(u) => u.node(piece_height, p).unwrap(),
                None => full.root(),
            };
            for length in [1u32, 2, 4] {
                for index in (p * per_piece..(p + 1) * per_piece).step_by(length as usize) {
                    for proof_layers in 0..6 {
                        let got = leaf_reply(
                            &leaves,
                            piece_height,
                            p,
                            &expected,
                            upper.as_ref(),
                            (index, length, proof_layers),
                        );
                        served += usize::from(got.is_some());
                        let want = if u64::from(length) <= per_piece {
                            full.hashes(0, index, length, proof_layers)
                        } else {
                            None
                        };
                        assert_eq!(
                            got, want,
                            "len {len} piece {p} at {index}x{length} p{proof_layers}"
                        );
                    }
                }
            }
            // Outside this piece, misaligned, or not the piece's data: refused.
            let r = |index| {
                leaf_reply(
                    &leaves,
                    piece_height,
                    p,
                    &expected,
                    upper.as_ref(),
                    (index, 1, 0),
                )
            };
            assert_eq!(r((p + 1) * per_piece), None);
            if p > 0 {
                assert_eq!(r(p * per_piece - 1), None);
            }
            assert_eq!(
                leaf_reply(
                    &leaves,
                    piece_height,
                    p,
                    &ZERO,
                    upper.as_ref(),
                    (p * per_piece, 1, 0)
                ),
                None
            );
            assert_eq!(
                leaf_reply(
                    &leaves,
                    piece_height,
                    p,
                    &expected,
                    upper.as_ref(),
                    (p * per_piece + 1, 2, 0)
                ),
                None
            );
        }
    }
    assert!(served > 200, "only {served} requests served");
}
