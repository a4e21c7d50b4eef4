//! BEP 10, the extension protocol: so far only its handshake, which tells a peer who we are and how
//! many requests we queue (`reqq`), and tells us the same of it. No extension messages are offered
//! (`m` is empty) until one is implemented (BEP 9 metadata, BEP 11 PEX).

use crate::bencode::{decode, Limits, Value};

/// Message id of every BEP 10 message.
pub const EXTENDED_ID: u8 = 20;
/// Extended message id of the handshake.
pub const HANDSHAKE_ID: u8 = 0;
/// Reserved-byte bit announcing BEP 10 (byte 5, 0x10).
pub const RESERVED_BYTE: usize = 5;
/// The bit.
pub const RESERVED_BIT: u8 = 0x10;
/// Longest client name kept from a peer.
const MAX_CLIENT_NAME: usize = 64;

/// What a peer's extended handshake told us (every field optional, unknown ones ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtHandshake {
    /// How many outstanding requests the peer queues before dropping them.
    pub reqq: Option<u32>,
    /// Client name and version (`v`), sanitised.
    pub client: Option<String>,
    /// The peer's listening port (`p`).
    pub port: Option<u16>,
}

impl ExtHandshake {
    /// Our handshake payload: no extensions offered, our queue depth and client name.
    pub fn ours(reqq: u32, port: Option<u16>) -> Vec<u8> {
        let mut d = Value::dict([
            ("m", Value::dict([])),
            ("reqq", Value::Int(i64::from(reqq))),
            (
                "v",
                Value::str(concat!("pixtorrent ", env!("CARGO_PKG_VERSION"))),
            ),
        ]);
        if let Some(p) = port {
            d.insert("p", Value::Int(i64::from(p)));
        }
        d.encode()
    }

    /// Parses a peer's handshake payload; `None` if it is not a bencoded dictionary.
    pub fn parse(payload: &[u8]) -> Option<ExtHandshake> {
        let doc = decode(payload, Limits::PEER_MESSAGE).ok()?;
        let root = doc.root();
        if !root.is_dict() {
            return None;
        }
        let int = |k: &[u8]| root.get(k).and_then(|n| n.as_int());
        Some(ExtHandshake {
            reqq: int(b"reqq")
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n > 0),
            client: root.get(b"v").and_then(|n| n.as_bytes()).map(|b| {
                String::from_utf8_lossy(&b[..b.len().min(MAX_CLIENT_NAME)])
                    .chars()
                    .map(|c| {
                        if crate::text::is_unprintable(c) {
                            '?'
                        } else {
                            c
                        }
                    })
                    .collect()
            }),
            port: int(b"p")
                .and_then(|n| u16::try_from(n).ok())
                .filter(|&p| p > 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_round_trips() {
        let bytes = ExtHandshake::ours(500, Some(6881));
        assert!(bytes.starts_with(b"d1:md"));
        assert_eq!(
            ExtHandshake::parse(&bytes),
            Some(ExtHandshake {
                reqq: Some(500),
                client: Some(concat!("pixtorrent ", env!("CARGO_PKG_VERSION")).into()),
                port: Some(6881),
            })
        );
    }

    #[test]
    fn libtorrent_style_handshake() {
        let payload = b"d1:ei0e4:ipv616:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x011:md11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei1234e1:pi6881e4:reqqi2000e1:v17:libtorrent 2.0.8\x0ae";
        let hs = ExtHandshake::parse(payload).unwrap();
        assert_eq!(hs.reqq, Some(2000));
        assert_eq!(hs.port, Some(6881));
        assert_eq!(hs.client.as_deref(), Some("libtorrent 2.0.8?"));
    }

    #[test]
    fn junk_and_odd_values_are_harmless() {
        assert_eq!(ExtHandshake::parse(b"garbage"), None);
        assert_eq!(ExtHandshake::parse(b"li1ee"), None);
        let hs = ExtHandshake::parse(b"d4:reqqi-5e1:pi70000ee").unwrap();
        assert_eq!(hs, ExtHandshake::default());
        let hs = ExtHandshake::parse(b"d4:reqq3:abce").unwrap();
        assert_eq!(hs.reqq, None);
    }
}
