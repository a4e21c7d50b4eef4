//! BEP 6, the Fast extension, as pure rules: the canonical allowed-fast set, the first availability
//! message (`have all` / `have none` / bitfield), and how many allowed-fast pieces we grant and
//! accept. The messages themselves are in [`super::message`]; the session applies these rules.

use std::net::IpAddr;

use sha1::{Digest, Sha1};

use super::Message;
use crate::bitfield::Bitfield;
use crate::types::InfoHash;

/// Pieces we let a starting peer request while choked (BEP 6's `k`, 10 as in its reference).
pub const ALLOWED_FAST_K: usize = 10;
/// Allowed-fast pieces we keep per peer from what it grants us (more are ignored).
pub const MAX_ALLOWED_FROM_PEER: usize = 64;

/// The BEP 6 canonical allowed-fast set of `k` pieces for the peer at `ip`, in a torrent of
/// `pieces` pieces. Defined for IPv4 only (BEP 6); empty for IPv6 and for a torrent too small for
/// the set to leave anything to trade (fewer than `2k` pieces).
pub fn allowed_fast_set(ip: IpAddr, info_hash: InfoHash, pieces: u32, k: usize) -> Vec<u32> {
    let IpAddr::V4(v4) = ip else {
        return Vec::new();
    };
    if pieces == 0 || (pieces as usize) < 2 * k {
        return Vec::new();
    }
    let mut x = Vec::with_capacity(24);
    x.extend_from_slice(&(u32::from(v4) & 0xffff_ff00).to_be_bytes());
    x.extend_from_slice(&info_hash.0);
    let mut set = Vec::with_capacity(k);
    while set.len() < k {
        x = Sha1::digest(&x).to_vec();
        for chunk in x.chunks_exact(4) {
            if set.len() >= k {
                break;
            }
            let y = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let index = y % pieces;
            if !set.contains(&index) {
                set.push(index);
            }
        }
    }
    set
}

/// The first availability message after the handshakes: with BEP 6 on both sides `have all` or
/// `have none` where they fit, else the bitfield; without it, the bitfield, or nothing when we have
/// no piece (BEP 3 allows skipping an empty one).
pub fn availability(ours: &Bitfield, fast: bool) -> Option<Message> {
    match (fast, ours.count()) {
        (true, _) if ours.is_full() => Some(Message::HaveAll),
        (true, 0) => Some(Message::HaveNone),
        (false, 0) => None,
        _ => Some(Message::Bitfield(ours.clone())),
    }
}

/// Whether a peer with `has` pieces still counts as starting, so that its allowed-fast requests are
/// served while it is choked (BEP 6's reference rejects them past `k` pieces).
pub fn starting(has: u32) -> bool {
    (has as usize) <= ALLOWED_FAST_K
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn the_bep_6_reference_sets() {
        let ip = IpAddr::V4(Ipv4Addr::new(80, 4, 4, 200));
        let hash = InfoHash([0xaa; 20]);
        assert_eq!(
            allowed_fast_set(ip, hash, 1313, 7),
            [1059, 431, 808, 1217, 287, 376, 1188]
        );
        assert_eq!(
            allowed_fast_set(ip, hash, 1313, 9),
            [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
        );
        // Only the /24 counts: the same set for a neighbour.
        let neighbour = IpAddr::V4(Ipv4Addr::new(80, 4, 4, 1));
        assert_eq!(
            allowed_fast_set(neighbour, hash, 1313, 9),
            allowed_fast_set(ip, hash, 1313, 9)
        );
    }

    #[test]
    fn sets_are_distinct_in_range_and_empty_where_undefined() {
        let hash = InfoHash([7; 20]);
        for pieces in [20u32, 21, 64, 1000] {
            let set = allowed_fast_set(IpAddr::V4(Ipv4Addr::LOCALHOST), hash, pieces, 10);
            assert_eq!(set.len(), 10);
            assert!(set.iter().all(|&i| i < pieces));
            let mut sorted = set.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 10, "{pieces}: {set:?}");
        }
        // Too small a torrent, no piece, IPv6: no set.
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert!(allowed_fast_set(v4, hash, 19, 10).is_empty());
        assert!(allowed_fast_set(v4, hash, 0, 10).is_empty());
        assert!(allowed_fast_set(IpAddr::V6(Ipv6Addr::LOCALHOST), hash, 1000, 10).is_empty());
    }

    #[test]
    fn the_first_availability_message() {
        let empty = Bitfield::new(8);
        let full = Bitfield::full(8);
        let mut some = Bitfield::new(8);
        some.set(3);
        assert_eq!(availability(&full, true), Some(Message::HaveAll));
        assert_eq!(availability(&empty, true), Some(Message::HaveNone));
        assert_eq!(
            availability(&some, true),
            Some(Message::Bitfield(some.clone()))
        );
        assert_eq!(
            availability(&full, false),
            Some(Message::Bitfield(full.clone()))
        );
        assert_eq!(
            availability(&some, false),
            Some(Message::Bitfield(some.clone()))
        );
        assert_eq!(availability(&empty, false), None);
        // A torrent of no piece at all is complete: have all, never a zero-byte bitfield.
        assert_eq!(
            availability(&Bitfield::new(0), true),
            Some(Message::HaveAll)
        );
    }

    #[test]
    fn a_peer_starts_up_to_k_pieces() {
        assert!(starting(0));
        assert!(starting(ALLOWED_FAST_K as u32));
        assert!(!starting(ALLOWED_FAST_K as u32 + 1));
    }
}
