//! Small value types shared by every layer: [`InfoHash`], [`InfoHashV2`], [`InfoHashes`], [`PeerId`], [`PieceIndex`],
//! [`BlockRef`] and [`Lengths`], the one place where piece and block offsets are computed.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use rand::Rng;

/// Percent-encoding for one URL query value or path part: everything but RFC 3986 unreserved
/// characters is escaped, so raw binary (an info-hash) survives intact.
pub const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The de-facto maximum request size every client honours: 16 KiB.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// SHA-1 of the bencoded `info` dictionary: a v1 torrent's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// Lower-case hex, 40 characters.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 40 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<InfoHash> {
        unhex(s).map(InfoHash)
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

/// SHA-256 of the bencoded `info` dictionary: a BitTorrent v2 torrent's identity (BEP 52).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHashV2(pub [u8; 32]);

impl InfoHashV2 {
    /// The first 20 bytes: what handshakes, trackers and the DHT carry for a v2 swarm.
    pub fn truncated(&self) -> InfoHash {
        let mut out = [0u8; 20];
        out.copy_from_slice(&self.0[..20]);
        InfoHash(out)
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<InfoHashV2> {
        unhex(s).map(InfoHashV2)
    }
}

/// `2 * N` hex digits (either case) to `N` bytes.
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let bytes = s.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// The hashes a torrent's `info` bytes are known by: SHA-1 (v1), SHA-256 (v2), or both (a hybrid).
/// What a magnet link names, and what fetched metadata must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InfoHashes {
    /// SHA-1 of the `info` bytes.
    pub v1: Option<InfoHash>,
    /// SHA-256 of the `info` bytes.
    pub v2: Option<InfoHashV2>,
}

impl InfoHashes {
    /// The 20-byte swarm id used first: the v1 hash, else the truncated v2 one.
    pub fn swarm(&self) -> InfoHash {
        match (self.v1, self.v2) {
            (Some(v1), _) => v1,
            (None, Some(v2)) => v2.truncated(),
            (None, None) => InfoHash([0; 20]),
        }
    }

    /// Whether `info` has every hash known here (and at least one is known).
    pub fn matches(&self, info: &[u8]) -> bool {
        use sha1::Digest;
        let v1 = self
            .v1
            .is_none_or(|h| sha1::Sha1::digest(info).as_slice() == h.0);
        let v2 = self
            .v2
            .is_none_or(|h| sha2::Sha256::digest(info).as_slice() == h.0);
        (self.v1.is_some() || self.v2.is_some()) && v1 && v2
    }
}

impl From<InfoHash> for InfoHashes {
    /// A v1 hash alone.
    fn from(v1: InfoHash) -> InfoHashes {
        InfoHashes {
            v1: Some(v1),
            v2: None,
        }
    }
}

impl fmt::Display for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHashV2({})", self.to_hex())
    }
}

/// Lower-case hex of any bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Our 20-byte peer id: Azureus style, `-PX0100-` then 12 random ASCII characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 20]);

impl PeerId {
    /// Client and version prefix (`PX`, 0.1.0.0).
    pub const PREFIX: &'static [u8; 8] = b"-PX0100-";

    /// A fresh id for this session.
    pub fn generate<R: Rng>(rng: &mut R) -> PeerId {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(Self::PREFIX);
        for b in &mut id[8..] {
            *b = ALPHABET[rng.random_range(0..ALPHABET.len())];
        }
        PeerId(id)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PeerId({})",
            String::from_utf8_lossy(&self.0).escape_debug()
        )
    }
}

/// A piece index known to be in range for its torrent (made only by [`Lengths::piece`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct PieceIndex(u32);

impl PieceIndex {
    /// The index as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// One block request: `len` bytes at `offset` inside `piece`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BlockRef {
    /// The piece.
    pub piece: PieceIndex,
    /// Byte offset inside the piece, a multiple of [`BLOCK_LEN`].
    pub offset: u32,
    /// Length: [`BLOCK_LEN`] except for the last block of a piece.
    pub len: u32,
}

/// The size arithmetic of one torrent: total length, piece length, piece count, blocks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Lengths {
    total: u64,
    piece_length: u32,
    piece_count: u32,
}

impl Lengths {
    /// `None` when `total` or `piece_length` is zero, or the piece count does not fit in a `u32`.
    pub fn new(total: u64, piece_length: u32) -> Option<Lengths> {
        if total == 0 || piece_length == 0 {
            return None;
        }
        let piece_count = u32::try_from(total.div_ceil(u64::from(piece_length))).ok()?;
        Some(Lengths {
            total,
            piece_length,
            piece_count,
        })
    }

    /// Total bytes of the torrent (pad files included).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Nominal piece length.
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// Number of pieces: ceil(total / piece length).
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// A checked piece index.
    pub fn piece(&self, index: u32) -> Option<PieceIndex> {
        (index < self.piece_count).then_some(PieceIndex(index))
    }

    /// The last piece.
    pub fn last_piece(&self) -> PieceIndex {
        PieceIndex(self.piece_count - 1)
    }

    /// Every piece in order.
    pub fn pieces(&self) -> impl Iterator<Item = PieceIndex> {
        (0..self.piece_count).map(PieceIndex)
    }

    /// Length of the last piece, in 1..=piece length.
    pub fn last_piece_len(&self) -> u32 {
        let rem = self.total % u64::from(self.piece_length);
        if rem == 0 {
            self.piece_length
        } else {
            rem as u32
        }
    }

    /// Length of `piece`.
    pub fn piece_len(&self, piece: PieceIndex) -> u32 {
        if piece.0 + 1 == self.piece_count {
            self.last_piece_len()
        } else {
            self.piece_length
        }
    }

    /// Offset of `piece`'s first byte in the torrent's byte stream.
    pub fn piece_offset(&self, piece: PieceIndex) -> u64 {
        u64::from(piece.0) * u64::from(self.piece_length)
    }

    /// Number of blocks in `piece`.
    pub fn block_count(&self, piece: PieceIndex) -> u32 {
        self.piece_len(piece).div_ceil(BLOCK_LEN)
    }

    /// The `i`th block of `piece`, if it exists.
    pub fn block(&self, piece: PieceIndex, i: u32) -> Option<BlockRef> {
        let piece_len = self.piece_len(piece);
        let offset = i.checked_mul(BLOCK_LEN).filter(|&o| o < piece_len)?;
        Some(BlockRef {
            piece,
            offset,
            len: (piece_len - offset).min(BLOCK_LEN),
        })
    }

    /// A block as a peer named it (`request`/`piece`/`cancel`): `Some` only when it is exactly one of
    /// this torrent's blocks.
    pub fn block_at(&self, piece: u32, offset: u32, len: u32) -> Option<BlockRef> {
        let piece = self.piece(piece)?;
        if offset % BLOCK_LEN != 0 {
            return None;
        }
        self.block(piece, offset / BLOCK_LEN)
            .filter(|b| b.len == len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_hashes_match_the_info_bytes_by_every_hash_they_know() {
        use sha1::Digest;
        let info = b"d4:name1:xe";
        let v1 = InfoHash(sha1::Sha1::digest(info).into());
        let v2 = InfoHashV2(sha2::Sha256::digest(info).into());
        let hex = v2.to_hex().to_uppercase();
        assert_eq!(InfoHashV2::from_hex(&hex), Some(v2));
        assert_eq!(InfoHashV2::from_hex(&hex[..62]), None);
        assert_eq!(InfoHashV2::from_hex(&format!("{}zz", &hex[..62])), None);
        let both = InfoHashes {
            v1: Some(v1),
            v2: Some(v2),
        };
        let only_v2 = InfoHashes {
            v1: None,
            v2: Some(v2),
        };
        for ids in [both, only_v2, InfoHashes::from(v1)] {
            assert!(ids.matches(info), "{ids:?}");
            assert!(!ids.matches(b"d4:name1:ye"), "{ids:?}");
        }
        let wrong_v1 = InfoHashes {
            v1: Some(InfoHash([1; 20])),
            v2: Some(v2),
        };
        assert!(!wrong_v1.matches(info), "a hybrid must match both");
        assert!(!InfoHashes { v1: None, v2: None }.matches(info));
        assert_eq!(both.swarm(), v1);
        assert_eq!(only_v2.swarm(), v2.truncated());
    }

    #[test]
    fn info_hash_hex_round_trip() {
        let h = InfoHash::from_hex("5E7886D42A52AE66DA4541D88882A04F9A34A649").unwrap();
        assert_eq!(h.to_hex(), "5e7886d42a52ae66da4541d88882a04f9a34a649");
        assert_eq!(InfoHash::from_hex(&h.to_string()), Some(h));
        assert_eq!(InfoHash::from_hex("5e78"), None);
        assert_eq!(InfoHash::from_hex(&"g".repeat(40)), None);
        assert_eq!(InfoHash::from_hex(&"é".repeat(20)), None);
    }

    #[test]
    fn v2_info_hash_truncates_to_its_first_20_bytes() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        let h = InfoHashV2(bytes);
        assert_eq!(h.truncated().0[..], bytes[..20]);
        assert_eq!(h.to_hex().len(), 64);
        assert!(h.to_string().starts_with("000102"));
        assert!(format!("{h:?}").ends_with("1e1f)"));
    }

    #[test]
    fn peer_id_shape() {
        let mut rng = rand::rng();
        let a = PeerId::generate(&mut rng);
        let b = PeerId::generate(&mut rng);
        assert_eq!(&a.0[..8], b"-PX0100-");
        assert!(a.0[8..].iter().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn refuses_degenerate_sizes() {
        assert_eq!(Lengths::new(0, 16384), None);
        assert_eq!(Lengths::new(1, 0), None);
        assert_eq!(Lengths::new(u64::MAX, 1), None);
        assert!(Lengths::new(u64::from(u32::MAX), 1).is_some());
    }

    #[test]
    fn big_buck_bunny_shape() {
        // 441,396,773 bytes in 512 KiB pieces: 842 pieces, the last 470,565 bytes.
        let l = Lengths::new(441_396_773, 524_288).unwrap();
        assert_eq!(l.piece_count(), 842);
        assert_eq!(l.last_piece_len(), 470_565);
        let last = l.last_piece();
        assert_eq!(l.piece_len(last), 470_565);
        assert_eq!(l.piece_len(l.piece(0).unwrap()), 524_288);
        assert_eq!(l.piece_offset(last), 841 * 524_288);
        assert_eq!(l.block_count(last), 29); // 28 full blocks + 11,813 bytes
        let tail = l.block(last, 28).unwrap();
        assert_eq!(
            (tail.offset, tail.len),
            (28 * BLOCK_LEN, 470_565 - 28 * BLOCK_LEN)
        );
        assert_eq!(l.block(last, 29), None);
        assert_eq!(l.piece(842), None);
    }

    #[test]
    fn exact_multiple_and_tiny_torrents() {
        let l = Lengths::new(4 * 32768, 32768).unwrap();
        assert_eq!((l.piece_count(), l.last_piece_len()), (4, 32768));
        assert_eq!(l.block_count(l.last_piece()), 2);
        let one = Lengths::new(1, 262_144).unwrap();
        assert_eq!((one.piece_count(), one.last_piece_len()), (1, 1));
        assert_eq!(one.block(one.last_piece(), 0).map(|b| b.len), Some(1));
        // Pieces smaller than a block: one short block each.
        let small = Lengths::new(10_000, 4096).unwrap();
        assert_eq!(small.piece_count(), 3);
        assert_eq!(
            small.block(small.piece(0).unwrap(), 0).map(|b| b.len),
            Some(4096)
        );
        assert_eq!(
            small.block(small.last_piece(), 0).map(|b| b.len),
            Some(10_000 - 8192)
        );
        assert_eq!(small.pieces().count(), 3);
    }

    #[test]
    fn block_at_accepts_only_real_blocks() {
        let l = Lengths::new(100_000, 65_536).unwrap(); // last piece 34,464 bytes
        assert!(l.block_at(0, 0, BLOCK_LEN).is_some());
        assert!(l.block_at(0, 3 * BLOCK_LEN, BLOCK_LEN).is_some());
        assert!(l.block_at(0, 4 * BLOCK_LEN, BLOCK_LEN).is_none()); // past the piece
        assert!(l.block_at(0, 1, BLOCK_LEN).is_none()); // unaligned
        assert!(l.block_at(0, 0, BLOCK_LEN + 1).is_none()); // oversized
        assert!(l.block_at(0, 0, 1).is_none()); // short
        assert!(l
            .block_at(1, 2 * BLOCK_LEN, 34_464 - 2 * BLOCK_LEN)
            .is_some()); // last block
        assert!(l.block_at(2, 0, BLOCK_LEN).is_none()); // no such piece
        assert!(l.block_at(0, u32::MAX - 1, BLOCK_LEN).is_none()); // no overflow
    }
}
