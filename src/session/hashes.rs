//! BEP 52 hash messages on a torrent's connections: the Merkle trees we hold, by `pieces root`,
//! and the answer to a peer's `hash request` ([`crate::wire::hashes::answer`] decides it, pure).
//! The trees come from the `.torrent`'s `piece layers`; a file of at most one piece needs none (its
//! root is in the `info`). [`layers`] fetches the piece layers of a magnet-loaded torrent.
//! Leaf hashes (base layer 0) are not kept: [`reply`] hashes the blocks of a piece we hold, read
//! from storage, when a peer asks for them (as libtorrent does after a piece fails), within a
//! per-peer [`LeafBudget`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use std::time::{Duration, Instant};

use super::Ctx;
use crate::bitfield::Bitfield;
use crate::merkle::{self, Hash, MerkleTree};
use crate::metainfo::Info;
use crate::wire::hashes::{answer, HashRequest, Hashes, MAX_HASHES};
use crate::wire::Message;

pub mod layers;

/// Bytes waiting to go to a peer past which its `hash request`s are rejected unread.
pub const MAX_BUFFERED: usize = 256 * 1024;

/// The trees of one torrent's files above their piece layers, by `pieces root`. Behind a lock so
/// that layers learnt from peers can join them while peer tasks read them.
#[derive(Debug, Default)]
pub struct Trees {
    by_root: RwLock<HashMap<Hash, Arc<MerkleTree>>>,
    /// Every file with a `pieces root`: where its pieces start and its length (for leaf hashes).
    files: HashMap<Hash, LeafFile>,
    piece_length: u32,
}

/// Where a file's pieces lie, to serve its leaf hashes.
#[derive(Debug, Clone, Copy)]
struct LeafFile {
    /// Its first piece's index in the torrent.
    first_piece: u32,
    len: u64,
}

/// Leaf-layer requests one peer may have answered per [`LEAF_WINDOW`]: each costs a piece read
/// and its SHA-256 tree, so a peer cannot make us hash the torrent over and over.
pub const LEAF_ANSWERS: u32 = 16;
/// The window of [`LEAF_ANSWERS`].
pub const LEAF_WINDOW: Duration = Duration::from_secs(10);

/// One peer's allowance of leaf-layer answers.
#[derive(Debug)]
pub struct LeafBudget {
    since: Instant,
    used: u32,
}

impl LeafBudget {
    /// A full allowance from now.
    pub fn new() -> LeafBudget {
        LeafBudget {
            since: super::now(),
            used: 0,
        }
    }

    /// Takes one answer from the allowance; `false` when it is spent for this window.
    fn take(&mut self) -> bool {
        let now = super::now();
        if now.duration_since(self.since) >= LEAF_WINDOW {
            self.since = now;
            self.used = 0;
        }
        self.used += 1;
        self.used <= LEAF_ANSWERS
    }
}

impl Default for LeafBudget {
    fn default() -> LeafBudget {
        LeafBudget::new()
    }
}

impl Trees {
    /// The trees of every file of `info` larger than one piece whose piece layer is known.
    pub fn for_info(info: &Info) -> Trees {
        let piece_length = info.lengths.piece_length();
        let mut by_root = HashMap::new();
        let mut files = HashMap::new();
        for p in info.v2_pieces().filter(|p| p.index_in_file == 0) {
            let (Some(root), Some(first_piece)) = (info.pieces_root(p.file), first_piece(info, p))
            else {
                continue;
            };
            let len = info.files[p.file].length;
            files.insert(root, LeafFile { first_piece, len });
        }
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
            files,
            piece_length,
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

    /// Where the leaves `request` asks for lie: the torrent's piece holding them, the piece's index
    /// in its file, its node's height, the hash it must have, and the file's tree above it.
    fn leaf_piece(&self, r: &HashRequest) -> Option<LeafPiece> {
        let file = self.files.get(&r.pieces_root)?;
        let pl = self.piece_length;
        let upper = if file.len > u64::from(pl) {
            Some(self.get(&r.pieces_root)?)
        } else {
            None
        };
        let height = match &upper {
            Some(tree) => tree.base(),
            None => merkle::piece_root_height(file.len, pl)?,
        };
        let in_file = u64::from(r.index) >> height;
        let expected = match &upper {
            Some(tree) => tree
                .layer(height)?
                .get(usize::try_from(in_file).ok()?)
                .copied()?,
            None => r.pieces_root,
        };
        let offset = in_file.checked_mul(u64::from(pl))?;
        Some(LeafPiece {
            piece: file.first_piece.checked_add(u32::try_from(in_file).ok()?)?,
            in_file,
            height,
            expected,
            len: file
                .len
                .checked_sub(offset)
                .filter(|&n| n > 0)?
                .min(u64::from(pl)) as usize,
            upper,
        })
    }
}

#[cfg(test)]
impl Trees {
    /// The trees of a torrent of one file of `len` bytes whose tree above the piece layer is `tree`.
    pub(crate) fn one_file(tree: MerkleTree, len: u64, piece_length: u32) -> Trees {
        let root = tree.root();
        let trees = Trees {
            files: HashMap::from([(
                root,
                LeafFile {
                    first_piece: 0,
                    len,
                },
            )]),
            piece_length,
            ..Trees::default()
        };
        trees.insert(tree);
        trees
    }
}

/// The piece a leaf-layer request falls in ([`Trees::leaf_piece`]).
struct LeafPiece {
    piece: u32,
    in_file: u64,
    height: u32,
    expected: Hash,
    /// The piece's bytes in its file.
    len: usize,
    upper: Option<Arc<MerkleTree>>,
}

/// The index of v2 piece `p`'s first piece in the torrent (`p` is a file's first piece).
fn first_piece(info: &Info, p: crate::metainfo::V2Piece) -> Option<u32> {
    u32::try_from(info.files[p.file].offset / u64::from(info.lengths.piece_length())).ok()
}

/// What a peer's `hash request` gets on a connection of `ctx`'s torrent (`ours`: the pieces we
/// hold; `buffered`: bytes waiting to go to it). Layers from the piece layer up come from the
/// trees ([`Trees::answer`]); leaf hashes are computed from a piece we hold, read from storage,
/// within the peer's `budget`. Anything else gets a `hash reject`.
pub fn reply(
    ctx: &Ctx,
    ours: &Bitfield,
    r: &HashRequest,
    buffered: usize,
    budget: &mut LeafBudget,
) -> Message {
    if r.base_layer != 0 {
        return ctx.trees.answer(r, buffered);
    }
    let served = (buffered <= MAX_BUFFERED && r.check(MAX_HASHES).is_ok() && budget.take())
        .then(|| ctx.trees.leaf_piece(r))
        .flatten()
        .filter(|p| ours.get(p.piece))
        .and_then(|p| {
            let index = ctx.lengths.piece(p.piece)?;
            let mut data = vec![0u8; p.len];
            ctx.storage.read(index, 0, &mut data).ok()?;
            let leaves = merkle::leaf_hashes(&data);
            let request = (u64::from(r.index), r.length, r.proof_layers);
            let upper = p.upper.as_deref();
            merkle::leaf_reply(&leaves, p.height, p.in_file, &p.expected, upper, request)
        });
    match served {
        Some(hashes) => Message::Hashes(Hashes {
            request: *r,
            hashes,
        }),
        None => Message::HashReject(*r),
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
