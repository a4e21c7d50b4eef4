//! Establishing a peer connection: dialling out (TCP, uTP, see [`super::dial`]) or accepting (an
//! incoming one holds a `--max-peers` slot while it handshakes), the 68-byte handshake with its
//! timeout, and registration with the torrent (bans, duplicates); then [`super::peer`] runs the
//! connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::mse::{OpenError, Opened};
use super::peer::{serve_registered, timed_out, PeerError, Supports};
use super::pool::PeerSource;
use super::state::{PeerEntry, Refused, Torrent};
use super::Ctx;
use crate::net::PeerStream;
use crate::types::InfoHash;
use crate::utp::either::AnyStream;
use crate::wire::handshake::{client_name, HANDSHAKE_LEN};
use crate::wire::Handshake;

/// Time for the peer to answer our handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn dial(ctx: &Ctx, addr: SocketAddr, only: Option<bool>) -> Result<AnyStream, PeerError> {
    let dialer = &ctx.engine.dialer;
    let timeout = ctx.config.connect_timeout;
    match only {
        None => dialer.dial(addr, timeout).await,
        Some(utp) => dialer.dial_only(addr, timeout, utp).await,
    }
    .map_err(PeerError::from)
}

/// The id we dial `addr` with: a hybrid's truncated v2 info-hash when the address was heard of in
/// its v2 swarm, else the torrent's `info_hash`.
fn dial_hash(ctx: &Ctx, addr: SocketAddr) -> InfoHash {
    ctx.v2_swarm
        .filter(|_| ctx.lock().pool().v2_swarm(&addr))
        .unwrap_or(ctx.info_hash)
}

/// Our handshake under `info_hash`: the DHT bit when we run a node, the BEP 52 bit when the
/// torrent has a v2 side.
fn ours(ctx: &Ctx, info_hash: InfoHash) -> [u8; HANDSHAKE_LEN] {
    Handshake::ours_with_dht(info_hash, ctx.peer_id, ctx.dht().is_some())
        .with_v2(ctx.has_v2)
        .encode()
}

/// Runs the outgoing connection to `addr` until it ends. The dialer picks the transport (TCP, uTP
/// after it); a TCP connection that ends before the peer's handshake (some peers accept TCP and
/// close it, speaking only uTP) is followed by one over uTP.
pub async fn connect(ctx: Arc<Ctx>, addr: SocketAddr) -> Result<(), PeerError> {
    let stream = dial(&ctx, addr, None).await?;
    let tcp = matches!(stream, AnyStream::Tcp(_));
    match over(ctx.clone(), stream, addr).await {
        Err(PeerError::Unanswered(e)) if tcp && ctx.engine.dialer.utp.is_some() => {
            tracing::debug!(peer = %addr, error = %e, "no handshake over TCP; trying uTP");
            let stream = dial(&ctx, addr, Some(true)).await?;
            over(ctx, stream, addr).await
        }
        other => other,
    }
}

/// The connection on `stream`, through MSE as `--encryption` says ([`super::mse::open`]).
async fn over(ctx: Arc<Ctx>, stream: AnyStream, addr: SocketAddr) -> Result<(), PeerError> {
    let utp = matches!(stream, AnyStream::Utp(_));
    let info_hash = dial_hash(&ctx, addr);
    let ours = ours(&ctx, info_hash);
    let mode = ctx.engine.config.encryption;
    let redial = || dial(&ctx, addr, Some(utp));
    match super::mse::open(stream, addr, info_hash.0, mode, &ours, redial).await {
        Ok(Opened::Mse(stream)) => run(ctx, stream, addr, None, true).await,
        Ok(Opened::Plain(stream)) => run(ctx, stream, addr, None, false).await,
        Err(OpenError::Mse(e)) => Err(PeerError::Unanswered(std::io::Error::other(e.to_string()))),
        Err(OpenError::Redial(e)) => Err(e),
    }
}

/// Runs an accepted connection whose handshake (`theirs`) the engine has read, until it ends.
pub async fn accept(
    ctx: Arc<Ctx>,
    stream: impl PeerStream,
    addr: SocketAddr,
    slot: Incoming,
    theirs: [u8; HANDSHAKE_LEN],
) {
    let _ = run(ctx, stream, addr, Some((slot, theirs)), false).await;
}

/// An incoming connection's claim on a `--max-peers` slot while it handshakes: counted in
/// [`Torrent::accepting`] until it is settled (the peer registered or turned away) or released (the
/// handshake failed). Every path of [`run`] does one or the other.
pub struct Incoming(());

impl Incoming {
    /// Takes a slot; the caller checked there is room.
    pub fn claim(t: &mut Torrent) -> Incoming {
        t.claim_incoming();
        Incoming(())
    }

    /// Gives the slot back while the caller holds the lock.
    fn settle(self, t: &mut Torrent) {
        t.settle_incoming();
    }

    /// Gives the slot back.
    fn release(self, ctx: &Ctx) {
        self.settle(&mut ctx.lock());
    }
}

/// The handshake: ours first (unless `ours_sent`: it went as MSE's initial payload) and then
/// theirs when we dialled; when the peer dialled, theirs was read by the engine (`theirs`), is
/// checked, and ours follows under the id they used. A hybrid accepts either of its ids, also in
/// the answer to our dial (BEP 52: a v2 peer may upgrade the connection to the v2 id).
async fn handshake(
    ctx: &Ctx,
    stream: &mut impl PeerStream,
    addr: SocketAddr,
    theirs: Option<&[u8; HANDSHAKE_LEN]>,
    ours_sent: bool,
) -> Result<Handshake, PeerError> {
    let ids: Vec<InfoHash> = std::iter::once(ctx.info_hash).chain(ctx.v2_swarm).collect();
    // What ends an outgoing connection before the peer's handshake is `Unanswered`.
    let unanswered = |e: std::io::Error| PeerError::Unanswered(e);
    let exchange = async {
        let hs = match theirs {
            None => {
                if !ours_sent {
                    let ours = ours(ctx, dial_hash(ctx, addr));
                    stream.write_all(&ours).await.map_err(unanswered)?;
                }
                let mut theirs = [0u8; HANDSHAKE_LEN];
                stream.read_exact(&mut theirs).await.map_err(unanswered)?;
                Handshake::check_any(&theirs, &ids, ctx.peer_id)?
            }
            Some(theirs) => {
                let hs = Handshake::check_any(theirs, &ids, ctx.peer_id)?;
                stream.write_all(&ours(ctx, hs.info_hash)).await?;
                hs
            }
        };
        Ok::<_, PeerError>(hs)
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| match theirs {
            None => unanswered(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "handshake timed out",
            )),
            Some(_) => timed_out("handshake timed out"),
        })?
}

/// One connection: outgoing when `incoming` is `None`, else with its slot and the handshake the
/// engine read.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    mut stream: impl PeerStream,
    addr: SocketAddr,
    incoming: Option<(Incoming, [u8; HANDSHAKE_LEN])>,
    ours_sent: bool,
) -> Result<(), PeerError> {
    let outgoing = incoming.is_none();
    let (hs, incoming) = match incoming {
        None => (
            handshake(&ctx, &mut stream, addr, None, ours_sent).await?,
            None,
        ),
        Some((slot, theirs)) => {
            match handshake(&ctx, &mut stream, addr, Some(&theirs), false).await {
                Ok(hs) => (hs, Some(slot)),
                Err(e) => {
                    slot.release(&ctx);
                    return Err(e);
                }
            }
        }
    };
    let client = client_name(&hs.peer_id);
    let (tx, rx) = mpsc::unbounded_channel();
    let (registered, source) = {
        let mut t = ctx.lock();
        if let Some(slot) = incoming {
            slot.settle(&mut t);
        }
        let transport = stream.transport();
        let entry = PeerEntry {
            addr,
            id: hs.peer_id.0,
            tx,
            stats: Default::default(),
            unchoked: false,
            listen: outgoing.then_some(addr),
            seed: false,
            mse: transport.contains("rc4") || transport.contains("mse"),
            utp: transport.starts_with("utp"),
        };
        match t.admit(entry, &client, outgoing) {
            Ok((key, have, source)) => ((key, have), source),
            Err(Refused::Banned) => return Err(PeerError::Banned),
            Err(Refused::Duplicate) => return Err(PeerError::Dropped("already connected")),
        }
    };
    tracing::debug!(peer = %addr, client = %client, outgoing, transport = stream.transport(), source = %source.map_or("?", PeerSource::as_str), "connected");
    let supports = Supports {
        extensions: hs.supports_extensions(),
        dht: hs.supports_dht(),
        fast: hs.supports_fast(),
    };
    let result = serve_registered(ctx, &mut stream, addr, registered, supports, rx).await;
    tracing::debug!(peer = %addr, reason = %result.as_ref().err().map(|e| e.to_string()).unwrap_or_default(), "disconnected");
    result
}
