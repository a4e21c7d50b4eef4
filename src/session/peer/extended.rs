//! The BEP 10 side of a peer connection: what we offer and our greeting (bitfield, extended
//! handshake, BEP 5 `port`), dispatch of extended messages by the registry to one handler per
//! extension (`ut_metadata` here, `ut_pex` in [`super::pex`]), and the peer's DHT node.

use std::net::SocketAddr;

use super::{Conn, OUR_REQQ};
use crate::wire::extension::{self, ExtHandshake, Extension, Incoming};
use crate::wire::ut_metadata::{self, MetadataMessage};
use crate::wire::Message;

/// The BEP 10 extensions we offer: metadata exchange (BEP 9), so magnet users can start from us, and
/// peer exchange (BEP 11), but never for a private torrent (BEP 27).
pub(super) fn offered(private: bool) -> &'static [Extension] {
    if private {
        &[Extension::Metadata]
    } else {
        &[Extension::Metadata, Extension::Pex]
    }
}
/// Times over a peer may ask for each piece of our metadata (BEP 9 suggests bounding it): a client
/// that lost a piece asks again, one that asks without end is refused.
const METADATA_REQUESTS_PER_PIECE: u32 = 4;

impl Conn {
    /// What goes out first: our availability (bitfield, or BEP 6's `have all`/`have none` and
    /// allowed-fast set, see [`super::fast`]), our extended handshake to a peer
    /// that speaks BEP 10, and our DHT port to one that runs a node.
    pub(super) fn greet(&mut self) {
        self.greet_availability();
        if self.extensions {
            Message::Extended {
                id: extension::HANDSHAKE_ID,
                payload: ExtHandshake::ours(
                    OUR_REQQ,
                    Some(self.ctx.port),
                    offered(self.ctx.private),
                    Some(self.ctx.info_bytes.len() as u64),
                    Some(self.addr.ip()),
                )
                .into(),
            }
            .encode(&mut self.out);
        }
        if self.peer_dht && self.ctx.dht().is_some() {
            Message::Port(self.ctx.port).encode(&mut self.out);
        }
    }

    /// BEP 5: the peer's DHT node; it enters our table if it answers a ping.
    pub(super) fn on_port(&mut self, port: u16) {
        if let Some(dht) = self.ctx.dht() {
            dht.add_node(SocketAddr::new(self.addr.ip(), port));
        }
    }

    /// An extended message, dispatched by the id we gave its extension.
    pub(super) fn on_extended(&mut self, id: u8, payload: &[u8]) {
        match self.registry.incoming(id) {
            Incoming::Handshake => {
                if let Some(hs) = ExtHandshake::parse(payload) {
                    tracing::debug!(peer = %self.addr, reqq = ?hs.reqq, client = ?hs.client, "extended handshake");
                    if let Some(n) = hs.reqq {
                        self.pipeline.set_peer_limit(n);
                    }
                    self.registry.update(&hs);
                    self.pex_handshake(&hs);
                }
            }
            Incoming::Message(Extension::Metadata) => self.on_metadata(payload),
            Incoming::Message(Extension::Pex) => self.on_pex(payload),
            Incoming::Unknown(_) => {}
        }
    }

    /// A BEP 9 message: we answer requests for pieces of our info dictionary (a `reject` once the
    /// peer has asked for [`METADATA_REQUESTS_PER_PIECE`] times the pieces there are); anything
    /// else (data, rejects, junk) is of no use to a torrent that has its metadata and is ignored.
    fn on_metadata(&mut self, payload: &[u8]) {
        let Ok(MetadataMessage::Request { piece }) = MetadataMessage::parse(payload) else {
            return;
        };
        let Some(id) = self.registry.id_for(Extension::Metadata) else {
            return;
        };
        let info = self.ctx.info_bytes.clone();
        let allowed = METADATA_REQUESTS_PER_PIECE * ut_metadata::piece_count(info.len());
        self.metadata_served += 1;
        let reply = if self.metadata_served > allowed {
            MetadataMessage::Reject { piece }
        } else {
            MetadataMessage::answer(&info, piece)
        };
        Message::Extended {
            id,
            payload: reply.encode().into(),
        }
        .encode(&mut self.out);
    }
}
