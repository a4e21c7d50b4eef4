//! BEP 52 hash messages on a torrent's connections: the Merkle trees we hold, by `pieces root`,
//! and the answer to a peer's `hash request` ([`crate::wire::hashes::answer`] decides it, pure).
//! The trees come from the `.torrent`'s `piece layers`; a file of at most one piece needs none (its
//! root is in the `info`). [`layers`] fetches the piece layers of a magnet-loaded torrent.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::merkle::{self, Hash, MerkleTree};
use crate::metainfo::Info;
use crate::wire::hashes::{answer, HashRequest};
use crate::wire::Message;

pub mod layers;

/// Bytes waiting to go to a peer past which its `hash request`s are rejected unread.
pub const MAX_BUFFERED: usize = 256 * 1024;

/// The trees of one torrent's files above their piece layers, by `pieces root`. Behind a lock so
/// that layers learnt from peers can join them while peer tasks read them.
#[derive(Debug, Default)]
pub struct Trees {
    by_root: RwLock<HashMap<Hash, Arc<MerkleTree>>>,
}

impl Trees {
    /// The trees of every file of `info` larger than one piece whose piece layer is known.
    pub fn for_info(info: &Info) -> Trees {
        let piece_length = info.lengths.piece_length();
        let mut by_root = HashMap::new();
        if let Some(height) = merkle::piece_height(piece_length) {
            for i in 0..info.files.len() {
                let (Some(root), Some(layer)) = (info.pieces_root(i), info.piece_layer(i)) else {
                    continue;
                };
                if let Some(tree) = MerkleTree::from_layer(layer.to_vec(), height) {
                    if tree.root() == root {
                        by_root.insert(root, Arc::new(tree));
                    }
                }
            }
        }
        Trees {
            by_root: RwLock::new(by_root),
        }
    }

    /// The tree of the file whose `pieces root` is `root`, if held.
    pub fn get(&self, root: &Hash) -> Option<Arc<MerkleTree>> {
        let map = self.by_root.read().unwrap_or_else(|e| e.into_inner());
        map.get(root).cloned()
    }

    /// Adds a file's tree (its root is the key).
    pub fn insert(&self, tree: MerkleTree) {
        let mut map = self.by_root.write().unwrap_or_else(|e| e.into_inner());
        map.insert(tree.root(), Arc::new(tree));
    }

    /// Files whose tree is held.
    pub fn len(&self) -> usize {
        self.by_root.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no tree is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What a peer's `hash request` gets: the `hashes` from the file's tree, or a `hash reject`.
    /// With `buffered` bytes already waiting to go to that peer beyond [`MAX_BUFFERED`], a reject:
    /// a peer that streams requests without reading gets replies no bigger than its requests.
    pub fn answer(&self, request: &HashRequest, buffered: usize) -> Message {
        if buffered > MAX_BUFFERED {
            return Message::HashReject(*request);
        }
        answer(request, self.get(&request.pieces_root).as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::Metainfo;

    #[test]
    fn a_torrent_with_piece_layers_serves_each_big_file_from_its_layer() {
        let bytes = include_bytes!("../../tests/data/v2/v2-multi.torrent");
        let m = Metainfo::from_bytes_any_version(bytes).unwrap();
        let trees = Trees::for_info(&m.info);
        let plen = m.info.lengths.piece_length();
        let height = merkle::piece_height(plen).unwrap();
        let big: Vec<usize> = (0..m.info.files.len())
            .filter(|&i| {
                m.info.pieces_root(i).is_some() && m.info.files[i].length > u64::from(plen)
            })
            .collect();
        assert!(!big.is_empty(), "the fixture has a file of several pieces");
        assert_eq!(
            trees.len(),
            big.len(),
            "one tree per big file, none for small ones"
        );
        for i in big {
            let root = m.info.pieces_root(i).unwrap();
            let layer = m.info.piece_layer(i).unwrap();
            let length = (layer.len() as u32).next_power_of_two().min(512);
            let r = HashRequest {
                pieces_root: root,
                base_layer: height,
                index: 0,
                length,
                proof_layers: 0,
            };
            let Message::Hashes(h) = trees.answer(&r, 0) else {
                panic!("file {i} not served");
            };
            assert_eq!(&h.base()[..layer.len()], layer);
            // A peer that does not read gets rejects, not more hashes.
            assert_eq!(trees.answer(&r, MAX_BUFFERED + 1), Message::HashReject(r));
        }
    }

    #[test]
    fn a_torrent_without_piece_layers_holds_no_tree_until_one_is_added() {
        let bytes = include_bytes!("../../tests/data/v2/v2-multi.torrent");
        let full = Metainfo::from_bytes_any_version(bytes).unwrap();
        let mut t = crate::bencode::decode(bytes, crate::bencode::Limits::TORRENT)
            .unwrap()
            .root()
            .to_value();
        assert!(t.remove("piece layers").is_some());
        let bare = Metainfo::from_bytes_any_version(&t.encode()).unwrap();
        let trees = Trees::for_info(&bare.info);
        assert!(trees.is_empty());
        let (i, layer) = (0..full.info.files.len())
            .find_map(|i| Some((i, full.info.piece_layer(i)?)))
            .unwrap();
        let root = full.info.pieces_root(i).unwrap();
        assert!(trees.get(&root).is_none());
        let height = merkle::piece_height(full.info.lengths.piece_length()).unwrap();
        trees.insert(MerkleTree::from_layer(layer.to_vec(), height).unwrap());
        assert_eq!(trees.get(&root).map(|t| t.root()), Some(root));
    }
}
