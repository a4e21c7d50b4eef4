//! Peer exchange (BEP 11) on one connection: what this peer tells us goes to the address pool as
//! `pex`, and every [`crate::wire::pex::PEX_INTERVAL`] it hears which peers we gained and lost. The
//! rules (diffs, caps, rates, scopes) are [`crate::wire::pex`]'s; never for a private torrent.

use std::net::SocketAddr;
use std::time::Instant;

use super::Conn;
use crate::session::pool::PeerSource;
use crate::wire::extension::{ExtHandshake, Extension};
use crate::wire::pex::{PexIn, PexMessage, PexOut};
use crate::wire::Message;

/// The PEX state of one connection.
pub(super) struct PexState {
    incoming: PexIn,
    /// Created once the peer's handshake offers `ut_pex`.
    outgoing: Option<PexOut>,
    /// Our address as the peer sees it (`yourip`).
    yourip: Option<std::net::IpAddr>,
}

impl PexState {
    pub(super) fn new(peer: SocketAddr) -> PexState {
        PexState {
            incoming: PexIn::new(peer),
            outgoing: None,
            yourip: None,
        }
    }
}

impl Conn {
    /// The peer's extended handshake: start sending PEX if it speaks it; learn its listening port
    /// (an incoming peer's) and our address as it sees us.
    pub(super) fn pex_handshake(&mut self, hs: &ExtHandshake) {
        self.pex.yourip = hs.yourip.or(self.pex.yourip);
        if let Some(port) = hs.port {
            self.ctx
                .lock()
                .set_listen(self.key, SocketAddr::new(self.addr.ip(), port));
        }
        if !self.ctx.private
            && self.pex.outgoing.is_none()
            && self.registry.id_for(Extension::Pex).is_some()
        {
            self.pex.outgoing = Some(PexOut::new(crate::session::now()));
        }
    }

    /// A `ut_pex` message: the addresses worth dialling go to the pool (ours excluded).
    pub(super) fn on_pex(&mut self, payload: &[u8]) {
        if self.ctx.private {
            return;
        }
        let Ok(msg) = PexMessage::parse(payload) else {
            return;
        };
        let port = self.ctx.port;
        let mut ours: Vec<SocketAddr> = Vec::new();
        ours.extend(self.ctx.config.net.ip.map(|ip| SocketAddr::new(ip, port)));
        ours.extend(self.pex.yourip.map(|ip| SocketAddr::new(ip, port)));
        let now = crate::session::now();
        let accepted = self.pex.incoming.accept(now, &msg, &ours);
        if accepted.is_empty() {
            return;
        }
        let addrs: Vec<SocketAddr> = accepted.iter().map(|(a, _)| *a).collect();
        let added = self.ctx.lock().pool_mut().add(&addrs, PeerSource::Pex, now);
        tracing::debug!(peer = %self.addr, offered = addrs.len(), added, "pex");
        if added > 0 {
            self.ctx.wake.notify_one();
        }
    }

    /// Tells the peer what changed among our peers, when due.
    pub(super) fn send_pex(&mut self, now: Instant) {
        let Some(out) = self.pex.outgoing.as_mut() else {
            return;
        };
        let Some(id) = self.registry.id_for(Extension::Pex) else {
            return;
        };
        if now < out.due() {
            return;
        }
        let (connected, receiver) = {
            let t = self.ctx.lock();
            let receiver = t.peer(self.key).and_then(|e| e.listen).unwrap_or(self.addr);
            (t.pex_peers(), receiver)
        };
        if let Some(msg) = out.next(now, &connected, receiver) {
            Message::Extended {
                id,
                payload: msg.encode().into(),
            }
            .encode(&mut self.out);
        }
    }
}
