//! The 68-byte handshake: `\x13BitTorrent protocol`, 8 reserved bytes, info-hash, peer id.

use super::WireError;
use crate::types::{InfoHash, PeerId};

/// Length of a handshake on the wire.
pub const HANDSHAKE_LEN: usize = 68;
const PROTOCOL: &[u8; 20] = b"\x13BitTorrent protocol";

/// Reserved bits we always advertise: BEP 10 (byte 5, 0x10) and BEP 6, the Fast extension (byte 7,
/// 0x04). BEP 5's (byte 7, 0x01) is added per torrent when the DHT is on
/// ([`Handshake::ours_with_dht`]).
pub const OUR_RESERVED: [u8; 8] = [0, 0, 0, 0, 0, 0x10, 0, FAST_BIT];

/// The BEP 6 reserved bit (byte 7): the sender speaks the Fast extension.
pub const FAST_BIT: u8 = 0x04;

/// The BEP 5 reserved bit (byte 7): the sender runs a DHT node.
pub const DHT_BIT: u8 = 0x01;

/// The BEP 52 reserved bit (byte 7, its 4th most significant bit): the sender speaks BitTorrent v2
/// for this torrent. Sent beside a hybrid's v1 info-hash, it lets the other side answer with the
/// truncated v2 one (an upgrade of the connection to v2).
pub const V2_BIT: u8 = 0x10;

/// A parsed handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// Extension bits the sender supports.
    pub reserved: [u8; 8],
    /// The torrent.
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: PeerId,
}

impl Handshake {
    /// Ours, for `info_hash`.
    pub fn ours(info_hash: InfoHash, peer_id: PeerId) -> Handshake {
        Handshake {
            reserved: OUR_RESERVED,
            info_hash,
            peer_id,
        }
    }

    /// Ours, with the BEP 5 DHT bit (byte 7, 0x01) when `dht`: we run a DHT node and will send
    /// our UDP port in a `port` message.
    pub fn ours_with_dht(info_hash: InfoHash, peer_id: PeerId, dht: bool) -> Handshake {
        let mut hs = Handshake::ours(info_hash, peer_id);
        if dht {
            hs.reserved[7] |= DHT_BIT;
        }
        hs
    }

    /// This handshake with the BEP 52 bit (byte 7, 0x10) when `v2`: the torrent has a v2 side.
    pub fn with_v2(mut self, v2: bool) -> Handshake {
        if v2 {
            self.reserved[7] |= V2_BIT;
        }
        self
    }

    /// Whether the sender speaks BitTorrent v2 (BEP 52).
    pub fn supports_v2(&self) -> bool {
        self.reserved[7] & V2_BIT != 0
    }

    /// Whether the sender runs a DHT node (BEP 5).
    pub fn supports_dht(&self) -> bool {
        self.reserved[7] & DHT_BIT != 0
    }

    /// Whether the sender speaks the Fast extension (BEP 6).
    pub fn supports_fast(&self) -> bool {
        self.reserved[7] & FAST_BIT != 0
    }

    /// Whether the sender speaks BEP 10.
    pub fn supports_extensions(&self) -> bool {
        self.reserved[super::extension::RESERVED_BYTE] & super::extension::RESERVED_BIT != 0
    }

    /// The 68 wire bytes.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..].copy_from_slice(&self.peer_id.0);
        out
    }

    /// Parses 68 bytes without judging them.
    pub fn decode(bytes: &[u8; HANDSHAKE_LEN]) -> Result<Handshake, WireError> {
        if &bytes[..20] != PROTOCOL {
            return Err(WireError::NotBitTorrent);
        }
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&bytes[20..28]);
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(&bytes[28..48]);
        let mut peer_id = [0u8; 20];
        peer_id.copy_from_slice(&bytes[48..]);
        Ok(Handshake {
            reserved,
            info_hash: InfoHash(info_hash),
            peer_id: PeerId(peer_id),
        })
    }

    /// Parses and checks a peer's handshake: our torrent, and not ourselves.
    pub fn check(
        bytes: &[u8; HANDSHAKE_LEN],
        info_hash: InfoHash,
        our_id: PeerId,
    ) -> Result<Handshake, WireError> {
        Handshake::check_any(bytes, &[info_hash], our_id)
    }

    /// [`Handshake::check`] for a torrent known by several ids (a hybrid's v1 and truncated v2
    /// info-hashes): the peer's must be one of `info_hashes`.
    pub fn check_any(
        bytes: &[u8; HANDSHAKE_LEN],
        info_hashes: &[InfoHash],
        our_id: PeerId,
    ) -> Result<Handshake, WireError> {
        let hs = Handshake::decode(bytes)?;
        if !info_hashes.contains(&hs.info_hash) {
            return Err(WireError::WrongInfoHash(hs.info_hash));
        }
        if hs.peer_id == our_id {
            return Err(WireError::SelfConnection);
        }
        Ok(hs)
    }
}

/// A short name for the client behind a peer id (Azureus-style `-XX1234-` or Shad0w-style), for logs
/// and the summary. Never more than a few printable characters of the peer's choosing.
pub fn client_name(id: &PeerId) -> String {
    let b = &id.0;
    if b[0] == b'-' && b[7] == b'-' && b[1..7].iter().all(|c| c.is_ascii_alphanumeric()) {
        let code = std::str::from_utf8(&b[1..3]).unwrap_or("??");
        let name = match code {
            "lt" | "LT" => "libtorrent",
            "TR" => "Transmission",
            "qB" => "qBittorrent",
            "DE" => "Deluge",
            "UT" | "ut" => "uTorrent",
            "rq" | "RQ" => "rqbit",
            "PX" => "pixtorrent",
            "AZ" => "Vuze",
            _ => "",
        };
        let version = std::str::from_utf8(&b[3..7]).unwrap_or("");
        if name.is_empty() {
            return format!("-{code}{version}-");
        }
        return format!("{name} {version}");
    }
    if b.starts_with(b"A2-") {
        return "aria2".to_string();
    }
    let printable: String = b[..8]
        .iter()
        .map(|&c| if c.is_ascii_graphic() { c as char } else { '.' })
        .collect();
    printable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs() -> Handshake {
        Handshake {
            reserved: [0, 0, 0, 0, 0, 0x10, 0, 0x05],
            info_hash: InfoHash([7; 20]),
            peer_id: PeerId(*b"-lt2080-abcdefghijkl"),
        }
    }

    #[test]
    fn round_trip_is_68_bytes() {
        let bytes = hs().encode();
        assert_eq!(bytes.len(), 68);
        assert_eq!(bytes[0], 19);
        assert_eq!(&bytes[1..20], b"BitTorrent protocol");
        assert_eq!(Handshake::decode(&bytes), Ok(hs()));
    }

    #[test]
    fn checks_protocol_hash_and_self() {
        let me = PeerId(*b"-PX0100-000000000000");
        let mut bytes = hs().encode();
        assert_eq!(Handshake::check(&bytes, InfoHash([7; 20]), me), Ok(hs()));
        assert_eq!(
            Handshake::check(&bytes, InfoHash([8; 20]), me),
            Err(WireError::WrongInfoHash(InfoHash([7; 20])))
        );
        assert_eq!(
            Handshake::check(&bytes, InfoHash([7; 20]), hs().peer_id),
            Err(WireError::SelfConnection)
        );
        bytes[5] = b'X';
        assert_eq!(Handshake::decode(&bytes), Err(WireError::NotBitTorrent));
        bytes[5] = b'o';
        bytes[0] = 18;
        assert_eq!(Handshake::decode(&bytes), Err(WireError::NotBitTorrent));
    }

    #[test]
    fn we_advertise_only_what_we_implement() {
        let hs = Handshake::ours(InfoHash([0; 20]), PeerId([0; 20]));
        assert_eq!(
            hs.reserved,
            [0, 0, 0, 0, 0, 0x10, 0, 0x04],
            "BEP 10 and BEP 6"
        );
        assert!(hs.supports_extensions() && hs.supports_fast() && !hs.supports_dht());
        let dht = Handshake::ours_with_dht(InfoHash([0; 20]), PeerId([0; 20]), true);
        assert_eq!(dht.reserved, [0, 0, 0, 0, 0, 0x10, 0, 0x05], "and BEP 5");
        let plain = Handshake {
            reserved: [0; 8],
            ..hs
        };
        assert!(!plain.supports_extensions() && !plain.supports_fast());
    }

    #[test]
    fn the_v2_bit_is_byte_7_0x10_and_only_when_asked() {
        let ih = InfoHash([1; 20]);
        let id = PeerId([2; 20]);
        let v2 = Handshake::ours_with_dht(ih, id, true).with_v2(true);
        assert_eq!(v2.reserved, [0, 0, 0, 0, 0, 0x10, 0, 0x15]);
        assert!(v2.supports_v2() && v2.supports_dht() && v2.supports_fast());
        assert_eq!(v2.encode()[27], 0x15, "the last reserved byte on the wire");
        assert_eq!(Handshake::decode(&v2.encode()).unwrap(), v2);
        let v1 = Handshake::ours(ih, id).with_v2(false);
        assert_eq!(v1, Handshake::ours(ih, id));
        assert!(!v1.supports_v2());
    }

    #[test]
    fn a_torrent_with_two_ids_accepts_either() {
        let me = PeerId(*b"-PX0100-000000000000");
        let bytes = hs().encode();
        let ids = [InfoHash([9; 20]), InfoHash([7; 20])];
        assert_eq!(Handshake::check_any(&bytes, &ids, me), Ok(hs()));
        assert_eq!(
            Handshake::check_any(&bytes, &ids[..1], me),
            Err(WireError::WrongInfoHash(InfoHash([7; 20])))
        );
        assert_eq!(
            Handshake::check_any(&bytes, &ids, hs().peer_id),
            Err(WireError::SelfConnection)
        );
    }

    #[test]
    fn client_names() {
        assert_eq!(
            client_name(&PeerId(*b"-lt2080-abcdefghijkl")),
            "libtorrent 2080"
        );
        assert_eq!(
            client_name(&PeerId(*b"-TR3000-abcdefghijkl")),
            "Transmission 3000"
        );
        assert_eq!(client_name(&PeerId(*b"A2-1-36-0-abcdefghij")), "aria2");
        assert_eq!(client_name(&PeerId(*b"-ZZ0001-abcdefghijkl")), "-ZZ0001-");
        assert_eq!(client_name(&PeerId([0; 20])), "........");
    }

    #[test]
    fn the_dht_bit_is_set_only_when_asked_and_read_back() {
        let ih = InfoHash([1; 20]);
        let id = PeerId([2; 20]);
        let plain = Handshake::ours(ih, id);
        assert!(!plain.supports_dht() && plain.supports_extensions());
        let dht = Handshake::ours_with_dht(ih, id, true);
        assert_eq!(dht.reserved, [0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        assert!(dht.supports_dht());
        assert_eq!(Handshake::decode(&dht.encode()).unwrap(), dht);
        assert_eq!(Handshake::ours_with_dht(ih, id, false), plain);
    }
}
