//! Establishing a peer connection: dialling out or accepting (an incoming one holds a `--max-peers`
//! slot while it handshakes), the 68-byte handshake with its timeout, and registration with the
//! torrent (bans, duplicates); then [`super::peer`] runs the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::peer::{serve_registered, timed_out, PeerError};
use super::pool::PeerSource;
use super::state::{PeerEntry, Torrent};
use super::Ctx;
use crate::net::PeerStream;
use crate::wire::handshake::{client_name, HANDSHAKE_LEN};
use crate::wire::Handshake;

/// Time for the peer to answer our handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the outgoing connection to `addr` until it ends.
pub async fn connect(ctx: Arc<Ctx>, addr: SocketAddr) -> Result<(), PeerError> {
    let stream = tokio::time::timeout(
        ctx.config.connect_timeout,
        crate::net::connect(&ctx.config.net, addr),
    )
    .await
    .map_err(|_| timed_out("connect timed out"))??;
    run(ctx, stream, addr, None).await
}

/// Runs an accepted connection until it ends.
pub async fn accept(ctx: Arc<Ctx>, stream: impl PeerStream, addr: SocketAddr, slot: Incoming) {
    let _ = run(ctx, stream, addr, Some(slot)).await;
}

/// An incoming connection's claim on a `--max-peers` slot while it handshakes: counted in
/// [`Torrent::accepting`] until the peer is registered (or turned away), or the task ends.
pub struct Incoming {
    ctx: Arc<Ctx>,
    live: bool,
}

impl Incoming {
    /// Takes a slot; the caller checked there is room.
    pub fn claim(ctx: &Arc<Ctx>, t: &mut Torrent) -> Incoming {
        t.accepting += 1;
        Incoming {
            ctx: ctx.clone(),
            live: true,
        }
    }

    /// Gives the slot back while the caller holds the lock.
    fn settle(mut self, t: &mut Torrent) {
        t.accepting = t.accepting.saturating_sub(1);
        self.live = false;
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if self.live {
            let mut t = self.ctx.lock();
            t.accepting = t.accepting.saturating_sub(1);
        }
    }
}

async fn handshake(
    ctx: &Ctx,
    stream: &mut impl PeerStream,
    outgoing: bool,
) -> Result<Handshake, PeerError> {
    let ours = Handshake::ours(ctx.info_hash, ctx.peer_id).encode();
    let exchange = async {
        if outgoing {
            stream.write_all(&ours).await?;
        }
        let mut theirs = [0u8; HANDSHAKE_LEN];
        stream.read_exact(&mut theirs).await?;
        let hs = Handshake::check(&theirs, ctx.info_hash, ctx.peer_id)?;
        if !outgoing {
            stream.write_all(&ours).await?;
        }
        Ok::<_, PeerError>(hs)
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| timed_out("handshake timed out"))?
}

/// One connection: outgoing when `incoming` is `None`.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    mut stream: impl PeerStream,
    addr: SocketAddr,
    incoming: Option<Incoming>,
) -> Result<(), PeerError> {
    let outgoing = incoming.is_none();
    let hs = handshake(&ctx, &mut stream, outgoing).await?;
    let client = client_name(&hs.peer_id);
    let (tx, rx) = mpsc::unbounded_channel();
    let (registered, source) = {
        let mut t = ctx.lock();
        if let Some(slot) = incoming {
            slot.settle(&mut t);
        }
        if t.is_banned(&addr, Some(&hs.peer_id.0)) {
            return Err(PeerError::Banned);
        }
        if t.peers.values().any(|p| p.id == hs.peer_id.0) {
            return Err(PeerError::Dropped("already connected"));
        }
        t.pool.connected(addr);
        t.trackers.peers_seen += 1;
        let source = if outgoing {
            t.pool.source(&addr)
        } else {
            Some(PeerSource::Incoming)
        };
        let tally = t.tallies.entry(addr).or_default();
        tally.client = client.clone();
        tally.source = source;
        let registered = t.register(PeerEntry {
            addr,
            id: hs.peer_id.0,
            tx,
            stats: Default::default(),
            unchoked: false,
            listen: outgoing.then_some(addr),
            seed: false,
        });
        (registered, source)
    };
    tracing::debug!(peer = %addr, client = %client, outgoing, source = %source.map_or("?", PeerSource::as_str), "connected");
    let extensions = hs.supports_extensions();
    let result = serve_registered(ctx, &mut stream, addr, registered, extensions, rx).await;
    tracing::debug!(peer = %addr, reason = %result.as_ref().err().map(|e| e.to_string()).unwrap_or_default(), "disconnected");
    result
}
