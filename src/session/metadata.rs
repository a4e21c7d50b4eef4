//! A magnet link's first phase (BEP 9): its metadata fetched from peers before the download can
//! start. Peers come from the link's trackers, its `x.pe` and `--peer`; up to [`CONNECTIONS`] are
//! asked at once over `ut_metadata`, each piece checked as it arrives and the whole against the
//! info-hash by [`MetadataAssembler`]. A peer that lies about the size, sends a wrong piece or
//! rejects is dropped as a source; the fetch ends with the raw info dictionary, or with a reason when
//! no source is left to try.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use super::pool::{PeerSource, Pool};
use super::{now, SessionError};
use crate::net::{self, Bind};
use crate::tracker::{AnnounceRequest, Event, TrackerClient, TrackerConfig};
use crate::types::{InfoHash, PeerId};
use crate::wire::extension::{ExtHandshake, Extension, Incoming, Registry, HANDSHAKE_ID};
use crate::wire::handshake::HANDSHAKE_LEN;
use crate::wire::ut_metadata::{Blame, MetadataAssembler, MetadataMessage, Progress};
use crate::wire::{Codec, Handshake, Message};

/// Peers asked for the metadata at once: several in parallel (a slow or lying one costs little),
/// few enough to stay polite.
pub const CONNECTIONS: usize = 8;
/// A metadata connection that brings nothing for this long is closed (its pieces go to others).
const IDLE: Duration = Duration::from_secs(30);
/// Time for the TCP connect and the handshakes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Re-announce while no peer has supplied the metadata.
const REANNOUNCE: Duration = Duration::from_secs(30);
/// Peers asked of each tracker.
const NUMWANT: u32 = 100;
/// With nothing left to try for this long after the start, the fetch gives up.
const SETTLE: Duration = Duration::from_secs(5);
/// Between DHT lookups while the metadata is missing.
const DHT_AGAIN: Duration = Duration::from_secs(30);

/// What the fetch starts from.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Tracker URLs (the link's `tr`).
    pub trackers: Vec<String>,
    /// Peers to ask, with where they came from (`x.pe`, `--peer`).
    pub peers: Vec<(SocketAddr, PeerSource)>,
    /// Where our sockets come from.
    pub net: Bind,
    /// The port announced to trackers (the download's listening port; 0 if none yet).
    pub port: u16,
    /// The DHT, asked for peers too (`None`: off, or a private torrent).
    pub dht: Option<crate::dht::node::Dht>,
}

/// What the fetch tasks share. A `std` mutex, held only in short synchronous steps.
struct Shared {
    asm: Option<MetadataAssembler<u64>>,
    /// The size each source claimed, to start over from another when every source of the first
    /// claim turned out useless (a hostile first claimer).
    claims: HashMap<u64, i64>,
    pool: Pool,
    next_key: u64,
    active: usize,
    trackers_tried: usize,
    last_error: Option<String>,
    info: Option<Vec<u8>>,
}

struct Ctx {
    fetch: Fetch,
    peer_id: PeerId,
    shared: Mutex<Shared>,
    done: Notify,
    wake: Notify,
}

impl Ctx {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Fetches the metadata; `progress` is called about every 2 s with a one-line status.
pub async fn fetch(
    fetch: Fetch,
    progress: impl Fn(&str) + Send + 'static,
) -> Result<Vec<u8>, SessionError> {
    if fetch.trackers.is_empty() && fetch.peers.is_empty() && fetch.dht.is_none() {
        return Err(SessionError::NoMetadata(
            "the magnet link names no tracker (tr) and no peer (x.pe), no --peer was given and \
             the DHT is off (--no-dht): there is nobody to ask"
                .into(),
        ));
    }
    let started = now();
    let mut pool = Pool::default();
    for (addr, source) in &fetch.peers {
        pool.add(&[*addr], *source, started);
    }
    let ctx = Arc::new(Ctx {
        peer_id: PeerId::generate(&mut rand::rng()),
        shared: Mutex::new(Shared {
            asm: None,
            claims: HashMap::new(),
            pool,
            next_key: 1,
            active: 0,
            trackers_tried: 0,
            last_error: None,
            info: None,
        }),
        done: Notify::new(),
        wake: Notify::new(),
        fetch,
    });
    let client = Arc::new(
        TrackerClient::new(TrackerConfig {
            bind: ctx.fetch.net.clone(),
            ..TrackerConfig::default()
        })
        .map_err(|e| SessionError::Fatal(e.to_string()))?,
    );
    let mut tasks = tokio::task::JoinSet::new();
    for url in ctx.fetch.trackers.clone() {
        tasks.spawn(announce(ctx.clone(), client.clone(), url));
    }
    if let Some(dht) = ctx.fetch.dht.clone() {
        tasks.spawn(dht_peers(ctx.clone(), dht));
    }
    tasks.spawn(dial(ctx.clone()));
    let result = watch(&ctx, started, progress).await;
    tasks.abort_all();
    result
}

/// Waits for the metadata, reporting progress, until it arrives or nothing is left to try.
async fn watch(
    ctx: &Ctx,
    started: Instant,
    progress: impl Fn(&str),
) -> Result<Vec<u8>, SessionError> {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        let ticked = tokio::select! {
            _ = ctx.done.notified() => false,
            _ = tick.tick() => true,
        };
        let s = ctx.lock();
        if let Some(info) = &s.info {
            return Ok(info.clone());
        }
        let (have, pieces) = s.asm.as_ref().map_or((0, 0), |a| (a.have(), a.pieces()));
        if ticked {
            progress(&format!(
                "fetching metadata: {} peers asked now, {} to try, {have}/{pieces} pieces",
                s.active,
                s.pool.idle()
            ));
        }
        let nothing_left = s.active == 0 && s.pool.idle() == 0 && s.pool.connecting() == 0;
        let sources = ctx.fetch.trackers.len() + usize::from(ctx.fetch.dht.is_some());
        let trackers_done = s.trackers_tried >= sources;
        if nothing_left && trackers_done && now().duration_since(started) > SETTLE {
            let why = s
                .last_error
                .clone()
                .unwrap_or_else(|| "no peer found".into());
            return Err(SessionError::NoMetadata(format!(
                "no peer could supply it (last: {why})"
            )));
        }
    }
}

/// Asks the DHT for peers of the torrent until the metadata is in: at once, then every
/// [`DHT_AGAIN`]. The first lookup counts as one more tracker tried.
async fn dht_peers(ctx: Arc<Ctx>, dht: crate::dht::node::Dht) {
    let target = crate::dht::id::NodeId(ctx.fetch.info_hash.0);
    let mut first = true;
    loop {
        let early = ctx.clone();
        let peers = dht
            .get_peers(target, None, move |found| {
                early.lock().pool.add(found, PeerSource::Dht, now());
                early.wake.notify_one();
            })
            .await;
        {
            let mut s = ctx.lock();
            s.pool.add(&peers, PeerSource::Dht, now());
            if first {
                s.trackers_tried += 1;
                first = false;
            }
            if peers.is_empty() {
                s.last_error = Some("the DHT knows no peer of this torrent".into());
            }
        }
        ctx.wake.notify_one();
        tokio::time::sleep(DHT_AGAIN).await;
    }
}

/// Announces to one tracker until the metadata is in, every [`REANNOUNCE`].
async fn announce(ctx: Arc<Ctx>, client: Arc<TrackerClient>, url: String) {
    let mut first = true;
    loop {
        let req = AnnounceRequest {
            info_hash: ctx.fetch.info_hash,
            peer_id: ctx.peer_id,
            port: ctx.fetch.port.max(1),
            uploaded: 0,
            downloaded: 0,
            // Unknown until the metadata is in: not zero, which would say we seed.
            left: 1,
            event: if first { Event::Started } else { Event::None },
            numwant: Some(NUMWANT),
            key: rand::random(),
            tracker_id: None,
        };
        let result =
            tokio::time::timeout(Duration::from_secs(30), client.announce(&url, &req)).await;
        {
            let mut s = ctx.lock();
            match result {
                Ok(Ok(r)) => {
                    s.pool.add(&r.peers, PeerSource::Tracker, now());
                }
                Ok(Err(e)) => s.last_error = Some(format!("{}: {e}", crate::text::line(&url))),
                Err(_) => {
                    s.last_error = Some(format!("{}: no answer in time", crate::text::line(&url)))
                }
            }
            if first {
                s.trackers_tried += 1;
            }
        }
        first = false;
        ctx.wake.notify_one();
        ctx.done.notify_one();
        tokio::time::sleep(REANNOUNCE).await;
    }
}

/// Dials peers due in the pool, at most [`CONNECTIONS`] at a time.
async fn dial(ctx: Arc<Ctx>) {
    loop {
        let due = {
            let mut s = ctx.lock();
            let room = CONNECTIONS.saturating_sub(s.active);
            let due = s.pool.due(now(), room);
            s.active += due.len();
            due
        };
        for addr in due {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let key = {
                    let mut s = ctx.lock();
                    s.next_key += 1;
                    s.next_key
                };
                let result = connection(&ctx, addr, key).await;
                let mut s = ctx.lock();
                s.active -= 1;
                if let Some(asm) = s.asm.as_mut() {
                    asm.source_gone(key);
                }
                restart_if_hopeless(&mut s, ctx.fetch.info_hash);
                let permanent = result.is_err();
                if let Err(why) = result {
                    tracing::debug!(peer = %addr, why = %why, "metadata source dropped");
                    s.last_error = Some(format!("{addr}: {why}"));
                }
                s.pool.ended(addr, permanent, now());
                drop(s);
                ctx.wake.notify_one();
                ctx.done.notify_one();
            });
        }
        tokio::select! {
            _ = ctx.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// When no source of the current claim is left while others claimed another size, starts over
/// from the size most of them claimed: a hostile first claimer cannot block the fetch.
fn restart_if_hopeless(s: &mut Shared, info_hash: InfoHash) {
    let Some(asm) = s.asm.as_ref() else { return };
    if asm.usable_sources() > 0 {
        return;
    }
    let current = i64::from(asm.size());
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for &size in s.claims.values().filter(|&&c| c != current) {
        *counts.entry(size).or_default() += 1;
    }
    if let Some((&size, _)) = counts.iter().max_by_key(|(_, n)| **n) {
        s.asm = MetadataAssembler::new(info_hash, size).ok();
    }
}

/// One metadata connection. `Ok` when it ended without fault (the fetch finished, or the peer has
/// nothing to give), `Err` with the reason otherwise.
async fn connection(ctx: &Ctx, addr: SocketAddr, key: u64) -> Result<(), String> {
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, net::connect(&ctx.fetch.net, addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let ours = Handshake::ours(ctx.fetch.info_hash, ctx.peer_id).encode();
    let mut theirs = [0u8; HANDSHAKE_LEN];
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        stream.write_all(&ours).await?;
        stream.read_exact(&mut theirs).await
    })
    .await
    .map_err(|_| "handshake timed out".to_string())?
    .map_err(|e| e.to_string())?;
    let hs =
        Handshake::check(&theirs, ctx.fetch.info_hash, ctx.peer_id).map_err(|e| e.to_string())?;
    if !hs.supports_extensions() {
        return Err("does not speak the extension protocol (BEP 10)".into());
    }
    let mut out = BytesMut::new();
    let offered = [Extension::Metadata];
    Message::Extended {
        id: HANDSHAKE_ID,
        payload: ExtHandshake::ours(0, None, &offered, None, Some(addr.ip())).into(),
    }
    .encode(&mut out);
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut peer = MetadataPeer {
        ctx,
        key,
        registry: Registry::new(&offered),
        out: BytesMut::new(),
    };
    let mut codec = Codec::without_metadata();
    let mut buf = BytesMut::with_capacity(32 * 1024);
    loop {
        if ctx.lock().info.is_some() {
            return Ok(());
        }
        let read = tokio::time::timeout(IDLE, stream.read_buf(&mut buf)).await;
        match read {
            Err(_) => return Err("brought nothing for 30 s".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(0)) => return Err("closed by the peer".into()),
            Ok(Ok(_)) => {}
        }
        while let Some(msg) = codec.decode(&mut buf).map_err(|e| e.to_string())? {
            if let Message::Extended { id, payload } = msg {
                peer.on_extended(id, &payload)?;
            }
        }
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
            let asm = MetadataAssembler::new(self.ctx.fetch.info_hash, size)
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
