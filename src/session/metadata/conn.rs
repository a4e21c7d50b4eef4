//! One metadata source's connection: dialled as the download dials (TCP, then uTP), encrypted
//! first as `--encryption` says (MSE with our handshake as its initial payload, one plaintext retry
//! under `prefer`), the BitTorrent and BEP 10 handshakes, then `ut_metadata` requests. The connection asks again whenever the assembler may
//! have work for it (a piece freed when another source was dropped), not only when the peer speaks,
//! so a source never waits on a piece that nobody is fetching.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::mse::{self, OpenError, Opened};
use super::super::now;
use super::Ctx;
use crate::net::PeerStream;
use crate::types::InfoHash;
use crate::utp::either::AnyStream;
use crate::wire::extension::{ExtHandshake, Extension, Incoming, Registry, HANDSHAKE_ID};
use crate::wire::handshake::HANDSHAKE_LEN;
use crate::wire::ut_metadata::{Blame, MetadataAssembler, MetadataMessage, Progress};
use crate::wire::{Codec, Handshake, Message};

/// A metadata connection that brings nothing for this long is closed (its pieces go to others).
const IDLE: Duration = Duration::from_secs(30);
/// Time for the TCP connect and the handshakes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle connection looks for pieces freed by other sources.
const REASK: Duration = Duration::from_millis(500);

/// One metadata connection. `Ok` when it ended without fault (the fetch finished, or the peer has
/// nothing to give), `Err` with the reason otherwise. A TCP connection that ends before the peer's
/// handshake is followed by one over uTP, as for the download's connections.
pub(super) async fn connection(ctx: &Ctx, addr: SocketAddr, key: u64) -> Result<(), String> {
    let stream = dial(ctx, addr, None).await?;
    let tcp = matches!(stream, AnyStream::Tcp(_));
    match over(ctx, stream, addr, key).await {
        Err(Failure::Early(e)) if tcp && ctx.fetch.reach.dialer.utp.is_some() => {
            tracing::debug!(peer = %addr, error = %e, "no handshake over TCP; metadata asked over uTP");
            let stream = dial(ctx, addr, Some(true)).await?;
            over(ctx, stream, addr, key)
                .await
                .map_err(Failure::into_reason)
        }
        other => other.map_err(Failure::into_reason),
    }
}

/// How a metadata connection failed: before the peer's handshake, or after.
enum Failure {
    Early(String),
    Late(String),
}

impl Failure {
    fn into_reason(self) -> String {
        match self {
            Failure::Early(e) | Failure::Late(e) => e,
        }
    }
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Late(e)
    }
}

/// The connection on `stream`, through MSE as `--encryption` says ([`mse::open`]).
/// Under the id of the swarm `addr` was heard of in (a hybrid link's v2 swarm: the truncated v2 id).
async fn over(ctx: &Ctx, stream: AnyStream, addr: SocketAddr, key: u64) -> Result<(), Failure> {
    let utp = matches!(stream, AnyStream::Utp(_));
    let id = ctx.fetch.id_for(ctx.lock().pool.v2_swarm(&addr));
    let ours = our_handshake(ctx, id);
    let mode = ctx.fetch.reach.encryption;
    let redial = || dial(ctx, addr, Some(utp));
    match mse::open(stream, addr, id.0, mode, &ours, redial).await {
        Ok(Opened::Mse(stream)) => exchange(ctx, stream, (addr, id), key, true).await,
        Ok(Opened::Plain(stream)) => exchange(ctx, stream, (addr, id), key, false).await,
        Err(OpenError::Mse(e)) => Err(Failure::Early(e.to_string())),
        Err(OpenError::Redial(e)) => Err(Failure::Late(e)),
    }
}

/// Our handshake: BEP 10 without the Fast bit, since a metadata connection sends no availability
/// message (BEP 6 would want one); the BEP 52 bit for a v2 link.
fn our_handshake(ctx: &Ctx, id: InfoHash) -> [u8; HANDSHAKE_LEN] {
    let mut hs = Handshake::ours(id, ctx.peer_id).with_v2(ctx.fetch.ids.v2.is_some());
    hs.reserved[7] &= !crate::wire::handshake::FAST_BIT;
    hs.encode()
}

async fn dial(ctx: &Ctx, addr: SocketAddr, only: Option<bool>) -> Result<AnyStream, String> {
    let dialer = &ctx.fetch.reach.dialer;
    match only {
        None => dialer.dial(addr, CONNECT_TIMEOUT).await,
        Some(utp) => dialer.dial_only(addr, CONNECT_TIMEOUT, utp).await,
    }
    .map_err(|e| e.to_string())
}

/// The handshakes under `id` (ours already sent when `ours_sent`: it went inside MSE; the peer may
/// answer with a hybrid link's other id) and the exchange.
async fn exchange(
    ctx: &Ctx,
    mut stream: impl PeerStream,
    (addr, id): (SocketAddr, InfoHash),
    key: u64,
    ours_sent: bool,
) -> Result<(), Failure> {
    let ours = our_handshake(ctx, id);
    let mut theirs = [0u8; HANDSHAKE_LEN];
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        if !ours_sent {
            stream.write_all(&ours).await?;
        }
        stream.read_exact(&mut theirs).await
    })
    .await
    .map_err(|_| Failure::Early("handshake timed out".into()))?
    .map_err(|e| Failure::Early(e.to_string()))?;
    let hs = Handshake::check_any(&theirs, &ctx.fetch.swarms(), ctx.peer_id)
        .map_err(|e| e.to_string())?;
    // A v2 peer: it set the BEP 52 bit (libtorrent does on a hybrid's v1 connection, to offer the
    // upgrade), or it answered under the truncated v2 id (libtorrent sets no bit then).
    let v2_id = ctx.fetch.ids.v2.map(|h| h.truncated());
    if hs.supports_v2() || v2_id == Some(hs.info_hash) {
        ctx.lock().speaks_v2(addr);
    }
    if !hs.supports_extensions() {
        return Err("does not speak the extension protocol (BEP 10)"
            .to_string()
            .into());
    }
    tracing::trace!(peer = %addr, transport = stream.transport(), "metadata source connected");
    let mut out = BytesMut::new();
    let offered = [Extension::Metadata];
    Message::Extended {
        id: HANDSHAKE_ID,
        payload: ExtHandshake::ours(0, None, &offered, None, Some(addr.ip())).into(),
    }
    .encode(&mut out);
    stream
        .write_all(&out)
        .await
        .map_err(|e| Failure::Late(e.to_string()))?;
    let mut peer = MetadataPeer {
        ctx,
        key,
        registry: Registry::new(&offered),
        out: BytesMut::new(),
    };
    Ok(serve(ctx, &mut stream, &mut peer).await?)
}

/// Reads the peer's messages and sends our requests until the metadata is in. Every [`REASK`]
/// with nothing read, asks the assembler again: a piece another source held may be free now.
async fn serve(
    ctx: &Ctx,
    stream: &mut impl PeerStream,
    peer: &mut MetadataPeer<'_>,
) -> Result<(), String> {
    let mut codec = Codec::without_metadata();
    let mut buf = BytesMut::with_capacity(32 * 1024);
    let mut heard = now();
    // An interval, not a fresh sleep per turn: a chatty peer's reads must not keep postponing it.
    let mut reask = tokio::time::interval(REASK);
    loop {
        if ctx.lock().info.is_some() {
            return Ok(());
        }
        // `read_buf` is cancel-safe: when the timer wins, nothing was read.
        tokio::select! {
            read = stream.read_buf(&mut buf) => match read {
                Err(e) => return Err(e.to_string()),
                Ok(0) => return Err("closed by the peer".into()),
                Ok(_) => heard = now(),
            },
            _ = reask.tick() => {
                if now().duration_since(heard) >= IDLE {
                    return Err("brought nothing for 30 s".into());
                }
            }
        }
        while let Some(msg) = codec.decode(&mut buf).map_err(|e| e.to_string())? {
            if let Message::Extended { id, payload } = msg {
                peer.on_extended(id, &payload)?;
            }
        }
        // A piece freed by another source may be ours to ask for now.
        peer.ask();
        if !peer.out.is_empty() {
            stream
                .write_all(&peer.out)
                .await
                .map_err(|e| e.to_string())?;
            peer.out.clear();
        }
    }
}

/// One source's side of the exchange.
struct MetadataPeer<'a> {
    ctx: &'a Ctx,
    key: u64,
    registry: Registry,
    out: BytesMut,
}

impl MetadataPeer<'_> {
    fn on_extended(&mut self, id: u8, payload: &[u8]) -> Result<(), String> {
        match self.registry.incoming(id) {
            Incoming::Handshake => {
                let hs = ExtHandshake::parse(payload).ok_or("a malformed extended handshake")?;
                self.registry.update(&hs);
                if self.registry.id_for(Extension::Metadata).is_none() {
                    return Err("does not offer ut_metadata".into());
                }
                let size = hs.metadata_size.ok_or("offers no metadata_size")?;
                self.join(i64::try_from(size).unwrap_or(i64::MAX))?;
                self.ask();
            }
            Incoming::Message(Extension::Metadata) => {
                match MetadataMessage::parse(payload) {
                    Ok(MetadataMessage::Data {
                        piece,
                        total_size,
                        data,
                    }) => self.on_data(piece, total_size, data)?,
                    Ok(MetadataMessage::Reject { piece }) => {
                        if let Some(asm) = self.ctx.lock().asm.as_mut() {
                            asm.on_reject(self.key, piece, now());
                        }
                        return Err(format!("rejected metadata piece {piece}"));
                    }
                    Ok(MetadataMessage::Request { .. }) | Err(_) => {}
                }
                self.ask();
            }
            Incoming::Message(Extension::Pex) | Incoming::Unknown(_) => {}
        }
        Ok(())
    }

    /// Registers this peer as a source of its claimed size (starting the assembler on the first
    /// plausible claim).
    fn join(&mut self, size: i64) -> Result<(), String> {
        let mut s = self.ctx.lock();
        s.claims.insert(self.key, size);
        if s.asm.is_none() {
            let asm = MetadataAssembler::new(self.ctx.fetch.ids, size)
                .map_err(|e| format!("claims metadata of {size} bytes: {e}"))?;
            s.asm = Some(asm);
        }
        let Some(asm) = s.asm.as_mut() else {
            return Err("no assembler".into());
        };
        if asm.add_source(self.key, size) {
            Ok(())
        } else {
            Err(format!(
                "claims metadata of {size} bytes, others {}",
                asm.size()
            ))
        }
    }

    fn on_data(&mut self, piece: u32, total_size: u32, data: &[u8]) -> Result<(), String> {
        let mut s = self.ctx.lock();
        let Some(asm) = s.asm.as_mut() else {
            return Ok(());
        };
        match asm.on_data(self.key, piece, total_size, data) {
            Ok(Progress::Complete { info, culprits }) => {
                s.info = Some(info);
                drop(s);
                self.ctx.done.notify_one();
                if culprits.contains(&self.key) {
                    return Err("sent metadata pieces that failed the check".into());
                }
                Ok(())
            }
            Ok(Progress::HashMismatch { culprits, .. }) if culprits.contains(&self.key) => {
                Err("sent metadata that does not match the info-hash".into())
            }
            Ok(_) => Ok(()),
            Err(blame) => Err(blame_text(&blame)),
        }
    }

    /// Requests what the assembler hands this source.
    fn ask(&mut self) {
        let Some(id) = self.registry.id_for(Extension::Metadata) else {
            return;
        };
        let mut s = self.ctx.lock();
        let Some(asm) = s.asm.as_mut() else { return };
        while let Some(piece) = asm.next_request(self.key, now()) {
            Message::Extended {
                id,
                payload: MetadataMessage::Request { piece }.encode().into(),
            }
            .encode(&mut self.out);
        }
    }
}

fn blame_text(b: &Blame) -> String {
    format!("a bad metadata piece: {b}")
}
