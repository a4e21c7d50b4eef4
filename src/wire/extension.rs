//! BEP 10, the extension protocol: the handshake (who we are, how many requests we queue, which
//! extensions we speak under which ids, and the same of the peer) and the [`Registry`] that maps
//! extended message ids both ways: ours, fixed, to dispatch what arrives; the peer's, from its `m`, to
//! address what we send. One module per extension does the rest (`ut_metadata`, `ut_pex`).

use std::net::IpAddr;

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
/// Most entries of a peer's `m` read: libtorrent sends about 6; a huge one is ignored past this.
const MAX_EXTENSIONS: usize = 64;
/// Longest extension name kept.
const MAX_EXTENSION_NAME: usize = 64;

/// An extension we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// BEP 11 peer exchange.
    Pex,
    /// BEP 9 metadata exchange.
    Metadata,
}

impl Extension {
    /// Every extension we know.
    pub const ALL: [Extension; 2] = [Extension::Pex, Extension::Metadata];

    /// Its name in `m`.
    pub fn name(self) -> &'static str {
        match self {
            Extension::Pex => "ut_pex",
            Extension::Metadata => "ut_metadata",
        }
    }

    /// The id peers send it to us under: libtorrent's choices, so captures read alike.
    pub fn our_id(self) -> u8 {
        match self {
            Extension::Pex => 1,
            Extension::Metadata => 2,
        }
    }

    fn index(self) -> usize {
        match self {
            Extension::Pex => 0,
            Extension::Metadata => 1,
        }
    }
}

/// What an extended message's id means to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// The extended handshake (id 0).
    Handshake,
    /// One of our extensions, if we offered it.
    Message(Extension),
    /// An id we never gave out (ignored, as BEP 10 asks).
    Unknown(u8),
}

/// The ids of one connection, both ways.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    /// What we offered in our handshake.
    offered: Vec<Extension>,
    /// The peer's id for each of [`Extension::ALL`] (0: it does not speak it, or disabled it).
    theirs: [u8; 2],
}

impl Registry {
    /// A connection where we offer `offered`.
    pub fn new(offered: &[Extension]) -> Registry {
        Registry {
            offered: offered.to_vec(),
            theirs: [0; 2],
        }
    }

    /// The peer's handshake arrived (again: a later one replaces the ids, BEP 10).
    pub fn update(&mut self, hs: &ExtHandshake) {
        for ext in Extension::ALL {
            if let Some(&(_, id)) = hs.m.iter().find(|(name, _)| name == ext.name()) {
                self.theirs[ext.index()] = id;
            }
        }
    }

    /// The id to send `ext` under, when the peer speaks it and we offered it.
    pub fn id_for(&self, ext: Extension) -> Option<u8> {
        let id = self.theirs[ext.index()];
        (id != 0 && self.offered.contains(&ext)).then_some(id)
    }

    /// What an arriving extended message is.
    pub fn incoming(&self, id: u8) -> Incoming {
        if id == HANDSHAKE_ID {
            return Incoming::Handshake;
        }
        match self.offered.iter().find(|e| e.our_id() == id) {
            Some(&ext) => Incoming::Message(ext),
            None => Incoming::Unknown(id),
        }
    }
}

/// What a peer's extended handshake told us (every field optional, unknown ones ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtHandshake {
    /// How many outstanding requests the peer queues before dropping them.
    pub reqq: Option<u32>,
    /// Client name and version (`v`), sanitised.
    pub client: Option<String>,
    /// The peer's listening port (`p`).
    pub port: Option<u16>,
    /// Its extensions and the ids it wants them sent under (`m`; id 0, "disabled", kept too).
    pub m: Vec<(String, u8)>,
    /// The size of the torrent's info dictionary, as the peer claims it (`metadata_size`, BEP 9).
    pub metadata_size: Option<u64>,
    /// Our address as the peer sees it (`yourip`).
    pub yourip: Option<IpAddr>,
}

impl ExtHandshake {
    /// Our handshake payload: the extensions `offered`, our queue depth, client name, listening port,
    /// the metadata size (once we have the metadata) and the address we see the peer at.
    pub fn ours(
        reqq: u32,
        port: Option<u16>,
        offered: &[Extension],
        metadata_size: Option<u64>,
        yourip: Option<IpAddr>,
    ) -> Vec<u8> {
        let m = Value::dict(
            offered
                .iter()
                .map(|e| (e.name(), Value::Int(i64::from(e.our_id()))))
                .collect::<Vec<_>>(),
        );
        let mut d = Value::dict([
            ("m", m),
            ("reqq", Value::Int(i64::from(reqq))),
            (
                "v",
                Value::str(concat!("pixtorrent ", env!("CARGO_PKG_VERSION"))),
            ),
        ]);
        if let Some(p) = port {
            d.insert("p", Value::Int(i64::from(p)));
        }
        if let Some(n) = metadata_size.and_then(|n| i64::try_from(n).ok()) {
            d.insert("metadata_size", Value::Int(n));
        }
        if let Some(ip) = yourip {
            let bytes = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            d.insert("yourip", Value::Bytes(bytes));
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
            m: extensions(root.get(b"m")),
            metadata_size: int(b"metadata_size")
                .and_then(|n| u64::try_from(n).ok())
                .filter(|&n| n > 0),
            yourip: root.get(b"yourip").and_then(|n| n.as_bytes()).and_then(ip),
        })
    }
}

/// A peer's `m`: `name -> id` for ids 0–255, names printable, bounded.
fn extensions(m: Option<crate::bencode::Node<'_, '_>>) -> Vec<(String, u8)> {
    let Some(dict) = m.and_then(|n| n.as_dict()) else {
        return Vec::new();
    };
    dict.into_iter()
        .take(MAX_EXTENSIONS)
        .filter_map(|(name, v)| {
            let id = u8::try_from(v.as_int()?).ok()?;
            let name = std::str::from_utf8(name).ok()?;
            let ok =
                name.len() <= MAX_EXTENSION_NAME && !name.chars().any(crate::text::is_unprintable);
            ok.then(|| (name.to_string(), id))
        })
        .collect()
}

/// `yourip`: 4 or 16 bytes.
fn ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_round_trips() {
        let bytes = ExtHandshake::ours(500, Some(6881), &[], None, None);
        assert!(bytes.starts_with(b"d1:mde"));
        assert_eq!(
            ExtHandshake::parse(&bytes),
            Some(ExtHandshake {
                reqq: Some(500),
                client: Some(concat!("pixtorrent ", env!("CARGO_PKG_VERSION")).into()),
                port: Some(6881),
                ..ExtHandshake::default()
            })
        );
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let bytes = ExtHandshake::ours(2000, None, &Extension::ALL, Some(31_337), Some(ip));
        let hs = ExtHandshake::parse(&bytes).unwrap();
        assert_eq!(
            hs.m,
            vec![("ut_metadata".to_string(), 2), ("ut_pex".to_string(), 1)]
        );
        assert_eq!(hs.metadata_size, Some(31_337));
        assert_eq!(hs.yourip, Some(ip));
    }

    #[test]
    fn the_registry_maps_ids_both_ways() {
        let theirs = ExtHandshake::parse(
            b"d1:md11:ut_metadatai3e6:ut_pexi0e7:lt_donti7ee13:metadata_sizei99ee",
        )
        .unwrap();
        let mut r = Registry::new(&[Extension::Metadata]);
        assert_eq!(r.id_for(Extension::Metadata), None, "before its handshake");
        r.update(&theirs);
        assert_eq!(r.id_for(Extension::Metadata), Some(3));
        assert_eq!(
            r.id_for(Extension::Pex),
            None,
            "disabled by the peer (0), and not offered"
        );
        assert_eq!(r.incoming(0), Incoming::Handshake);
        assert_eq!(r.incoming(2), Incoming::Message(Extension::Metadata));
        assert_eq!(
            r.incoming(1),
            Incoming::Unknown(1),
            "ut_pex was not offered"
        );
        assert_eq!(r.incoming(7), Incoming::Unknown(7));
        // A later handshake changes the ids.
        r.update(&ExtHandshake::parse(b"d1:md11:ut_metadatai9eee").unwrap());
        assert_eq!(r.id_for(Extension::Metadata), Some(9));
        let both = Registry::new(&Extension::ALL);
        assert_eq!(both.incoming(1), Incoming::Message(Extension::Pex));
    }

    #[test]
    fn libtorrent_style_handshake() {
        let payload = b"d1:ei0e4:ipv616:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x011:md11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei1234e1:pi6881e4:reqqi2000e1:v17:libtorrent 2.0.8\x0ae";
        let hs = ExtHandshake::parse(payload).unwrap();
        assert_eq!(hs.metadata_size, Some(1234));
        assert_eq!(hs.yourip, None, "no yourip; `ipv6` is another key");
        assert_eq!(hs.m.len(), 2);
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
        let hs = ExtHandshake::parse(
            b"d1:md1:ai300e1:bi-1e2:\x1bci1e1:d3:abc1:ei4ee13:metadata_sizei-4e6:youripi5ee",
        )
        .unwrap();
        assert_eq!(hs.m, vec![("e".to_string(), 4)]);
        assert_eq!((hs.metadata_size, hs.yourip), (None, None));
        let hs = ExtHandshake::parse(b"d4:reqq3:abce").unwrap();
        assert_eq!(hs.reqq, None);
    }
}
