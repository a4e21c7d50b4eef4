//! The process-level engine: one TCP listener and one UDP port (the DHT and uTP, see
//! [`crate::udp`]) for every torrent, on the same port number; each incoming connection, TCP or uTP,
//! has its handshake read and goes to the torrent it names. One tracker client; one dialer (TCP then
//! uTP, [`super::dial`]); the global connection limit; and the set of torrents, added and removed
//! while it runs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use super::dial::Dialer;
use super::mse::Encryption;
use super::{link, Ctx, SessionError};
use crate::mse::handshake::looks_plaintext;
use crate::mse::stream::EncryptedStream;
use crate::net::{self, Bind};
use crate::ratelimit::TokenBucket;
use crate::storage::pool::FilePool;
use crate::tracker::{TrackerClient, TrackerConfig};
use crate::types::InfoHash;
use crate::udp::{Sinks, UdpPort};
use crate::utp::either::AnyStream;
use crate::utp::Utp;
use crate::wire::handshake::HANDSHAKE_LEN;
use crate::wire::Handshake;

/// Incoming connections that may be reading their handshake at once: a flood of half-open
/// connections costs at most this many tasks (each bounded by [`HANDSHAKE_TIMEOUT`]).
pub const MAX_HANDSHAKING: usize = 256;
/// Time for an incoming peer to send its 68-byte handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the engine, each default with its reason.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The address and interface of every socket.
    pub net: Bind,
    /// Port to listen on: 6881, the BitTorrent default; the next free one up to `port + 8` if taken;
    /// 0 for any.
    pub port: u16,
    /// Peer connections of all torrents together: 500, qBittorrent's global default (libtorrent's
    /// own `connections_limit` is 200, Transmission's `peer-limit-global` 200); each torrent also
    /// has its own `--max-peers`.
    pub max_connections: usize,
    /// The DHT node, on the UDP port of the same number (`None`: `--no-dht`).
    pub dht: Option<crate::dht::node::DhtConfig>,
    /// MSE/PE both ways (`--encryption`): prefer, as the default.
    pub encryption: super::mse::Encryption,
    /// TCP, in and out (`--no-tcp` turns it off).
    pub tcp: bool,
    /// uTP, in and out, on the UDP port (`--no-utp` turns it off).
    pub utp: bool,
    /// Payload bytes per second received, all torrents together (`None`: unlimited, the default).
    pub max_download_rate: Option<u64>,
    /// Payload bytes per second sent, all torrents together (`None`: unlimited, the default).
    pub max_upload_rate: Option<u64>,
    /// Data files open at once, all torrents together (`--max-open-files`): 128, see
    /// [`crate::storage::pool::DEFAULT_MAX_OPEN_FILES`].
    pub max_open_files: usize,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            net: Bind::default(),
            port: 6881,
            max_connections: 500,
            dht: None,
            encryption: super::mse::Encryption::Prefer,
            tcp: true,
            utp: true,
            max_download_rate: None,
            max_upload_rate: None,
            max_open_files: crate::storage::pool::DEFAULT_MAX_OPEN_FILES,
        }
    }
}

/// The process's rate limits, one bucket per direction (`None`: unlimited).
#[derive(Debug, Default)]
pub(crate) struct Limits {
    down: Option<Mutex<TokenBucket>>,
    up: Option<Mutex<TokenBucket>>,
}

impl Limits {
    fn new(config: &EngineConfig) -> Limits {
        let now = super::now();
        let bucket = |r: Option<u64>| r.map(|r| Mutex::new(TokenBucket::new(r, now)));
        Limits {
            down: bucket(config.max_download_rate),
            up: bucket(config.max_upload_rate),
        }
    }

    fn reserve(bucket: &Option<Mutex<TokenBucket>>, bytes: u64) -> Duration {
        match bucket {
            None => Duration::ZERO,
            Some(b) => b
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .reserve(bytes, super::now()),
        }
    }

    /// Reserves `bytes` of download; how long to wait before asking for them.
    pub(crate) fn down(&self, bytes: u64) -> Duration {
        Self::reserve(&self.down, bytes)
    }

    /// Reserves `bytes` of upload; how long to wait before sending more.
    pub(crate) fn up(&self, bytes: u64) -> Duration {
        Self::reserve(&self.up, bytes)
    }
}

/// What the engine's tasks share.
pub(crate) struct Shared {
    pub(crate) config: EngineConfig,
    /// The port peers reach us on (the one bound).
    pub(crate) port: u16,
    /// One tracker client for every torrent (its UDP connection ids are shared too).
    pub(crate) tracker: Arc<TrackerClient>,
    /// The DHT node, if on.
    pub(crate) dht: Option<crate::dht::node::Dht>,
    /// How we dial peers.
    pub(crate) dialer: Dialer,
    /// `--max-download-rate`, `--max-upload-rate`.
    pub(crate) limits: Limits,
    /// Every torrent's open data files (`--max-open-files`).
    pub(crate) files: Arc<FilePool>,
    /// The torrents, by info-hash. A `std` mutex, never held across `.await` nor together with a
    /// torrent's own lock (it is released before one is taken).
    torrents: Mutex<HashMap<InfoHash, Arc<Ctx>>>,
    handshaking: AtomicUsize,
}

impl Shared {
    fn torrents(&self) -> std::sync::MutexGuard<'_, HashMap<InfoHash, Arc<Ctx>>> {
        self.torrents.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a running torrent, so incoming connections for it are routed to it: under its
    /// info-hash, and a hybrid under its truncated v2 info-hash too (BEP 52).
    pub(crate) fn attach(&self, ctx: Arc<Ctx>) {
        let mut torrents = self.torrents();
        if let Some(v2) = ctx.v2_swarm {
            torrents.insert(v2, ctx.clone());
        }
        torrents.insert(ctx.info_hash, ctx);
    }

    /// Forgets a torrent that stopped, under every id it was registered with.
    pub(crate) fn detach(&self, info_hash: &InfoHash) {
        let mut torrents = self.torrents();
        if let Some(gone) = torrents.remove(info_hash) {
            torrents.retain(|_, c| !Arc::ptr_eq(c, &gone));
        }
    }

    /// The torrent registered under `info_hash`, if any.
    pub(crate) fn torrent(&self, info_hash: &InfoHash) -> Option<Arc<Ctx>> {
        self.torrents().get(info_hash).cloned()
    }

    /// Connections of every torrent (connected, dialling, handshaking); a hybrid, registered
    /// twice, counts once.
    pub(crate) fn connections(&self) -> usize {
        let torrents: Vec<Arc<Ctx>> = self
            .torrents()
            .iter()
            .filter(|(id, c)| **id == c.info_hash)
            .map(|(_, c)| c.clone())
            .collect();
        torrents.iter().map(|c| c.lock().busy()).sum()
    }

    /// An engine with no listener, for in-process tests.
    #[cfg(test)]
    pub(crate) fn detached() -> Arc<Shared> {
        let config = EngineConfig::default();
        Arc::new(Shared {
            port: config.port,
            tracker: Arc::new(TrackerClient::new(TrackerConfig::default()).expect("client")),
            dht: None,
            dialer: Dialer::tcp_only(config.net.clone()),
            limits: Limits::default(),
            files: FilePool::new(config.max_open_files),
            config,
            torrents: Mutex::new(HashMap::new()),
            handshaking: AtomicUsize::new(0),
        })
    }

    /// Whether one more connection fits under the global limit.
    pub(crate) fn has_room(&self) -> bool {
        self.connections() < self.config.max_connections
    }
}

/// The engine of one process.
#[derive(Clone)]
pub struct Engine {
    pub(crate) shared: Arc<Shared>,
}

impl Engine {
    /// Binds the listener and the UDP port (and starts accepting), and builds the tracker client.
    pub async fn start(config: EngineConfig) -> Result<Engine, SessionError> {
        let listener = bind(&config)?;
        let port = listener.local_addr().map_or(0, |a| a.port());
        tracing::debug!(port, tcp = config.tcp, utp = config.utp, "listening");
        let tracker = TrackerClient::new(TrackerConfig {
            bind: config.net.clone(),
            ..TrackerConfig::default()
        })
        .map_err(|e| SessionError::Fatal(e.to_string()))?;
        let (dht, utp) = udp(&config, port).await;
        if !config.tcp && utp.is_none() {
            return Err(SessionError::Fatal(format!(
                "--no-tcp, and uTP cannot run on UDP port {port}: no way to reach peers"
            )));
        }
        let shared = Arc::new(Shared {
            dialer: Dialer {
                net: config.net.clone(),
                tcp: config.tcp,
                utp: utp.clone(),
            },
            limits: Limits::new(&config),
            files: FilePool::new(config.max_open_files),
            config,
            port,
            tracker: Arc::new(tracker),
            dht,
            torrents: Mutex::new(HashMap::new()),
            handshaking: AtomicUsize::new(0),
        });
        if shared.config.tcp {
            tokio::spawn(accept_loop(shared.clone(), listener));
        }
        tokio::spawn(close_idle_files(Arc::downgrade(&shared.files)));
        if let Some(utp) = utp {
            for v6 in [false, true].into_iter().filter(|&v6| utp.has(v6)) {
                tokio::spawn(utp_accept_loop(shared.clone(), utp.clone(), v6));
            }
        }
        Ok(Engine { shared })
    }

    /// The port peers reach us on.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// The DHT node, if on.
    pub fn dht(&self) -> Option<crate::dht::node::Dht> {
        self.shared.dht.clone()
    }
}

fn bind(config: &EngineConfig) -> Result<TcpListener, SessionError> {
    let ports: Vec<u16> = if config.port == 0 {
        vec![0]
    } else {
        (config.port..=config.port.saturating_add(8)).collect()
    };
    let mut last = None;
    for p in ports {
        match net::listen(&config.net, p) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(SessionError::Listen {
        addr: format!("{} port {}", config.net.describe(), config.port),
        error: last.unwrap_or_else(|| std::io::Error::other("no port to try")),
    })
}

/// The UDP port of the same number as the listener, with the DHT and uTP on it as configured. The
/// downloads work without either, as in every client: a port that cannot be bound is a warning.
async fn udp(config: &EngineConfig, port: u16) -> (Option<crate::dht::node::Dht>, Option<Utp>) {
    if config.dht.is_none() && !config.utp {
        return (None, None);
    }
    let udp = match UdpPort::bind(&config.net, port).await {
        Ok(udp) => udp,
        Err(e) => {
            tracing::warn!("DHT and uTP off: cannot use UDP port {port}: {e}");
            return (None, None);
        }
    };
    let (dht, mut krpc) = match config.dht.clone() {
        Some(mut dht) => {
            dht.port = port;
            let (dht, sinks) = crate::dht::node::Dht::start_on(dht, &udp);
            (Some(dht), sinks)
        }
        None => (None, [None, None]),
    };
    let (utp, mut utp_sinks) = if config.utp {
        match Utp::start(&udp) {
            Ok((utp, sinks)) => (Some(utp), sinks),
            Err(e) => {
                tracing::warn!("uTP off: {e}");
                (None, [None, None])
            }
        }
    } else {
        (None, [None, None])
    };
    for (k, v6) in [false, true].into_iter().enumerate() {
        udp.demux(
            v6,
            Sinks {
                krpc: krpc[k].take(),
                utp: utp_sinks[k].take(),
            },
        );
    }
    (dht, utp)
}

/// How often the file pool closes files idle since its last sweep: a file is closed after one to two
/// minutes without a read or a write.
const CLOSE_IDLE_EVERY: Duration = Duration::from_secs(60);

/// Closes idle data files every [`CLOSE_IDLE_EVERY`], for as long as the pool lives.
async fn close_idle_files(pool: std::sync::Weak<FilePool>) {
    let mut tick = tokio::time::interval(CLOSE_IDLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        pool.close_idle();
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        net::tune(&stream);
        incoming(&shared, AnyStream::Tcp(stream), addr);
    }
}

async fn utp_accept_loop(shared: Arc<Shared>, utp: Utp, v6: bool) {
    while let Some(stream) = utp.accept(v6).await {
        let addr = stream.remote_addr();
        incoming(&shared, AnyStream::Utp(stream), addr);
    }
}

/// An accepted connection, TCP or uTP: its handshake read (on a task of its own) and the peer handed
/// to the torrent it names.
fn incoming(shared: &Arc<Shared>, stream: AnyStream, addr: SocketAddr) {
    // A connection still handshaking holds a slot under the global limit, so a flood of half-open
    // connections cannot exceed --max-connections (nor MAX_HANDSHAKING), each one bounded by the
    // handshake timeout. Its torrent, and so its --max-peers, is known only once the handshake is
    // read.
    let room = shared
        .config
        .max_connections
        .saturating_sub(shared.connections())
        .min(MAX_HANDSHAKING);
    if shared.handshaking.fetch_add(1, Ordering::SeqCst) >= room {
        shared.handshaking.fetch_sub(1, Ordering::SeqCst);
        tracing::debug!(peer = %addr, "refused: too many connections or handshakes");
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        let routed = route(&shared, stream, addr).await;
        shared.handshaking.fetch_sub(1, Ordering::SeqCst);
        if let Some((ctx, stream, theirs)) = routed {
            // Our handshake still to send: the peer holds one of the torrent's --max-peers slots.
            let slot = {
                let mut t = ctx.lock();
                (t.busy() < ctx.config.max_peers).then(|| link::Incoming::claim(&mut t))
            };
            match slot {
                Some(slot) => link::accept(ctx, stream, addr, slot, theirs).await,
                None => tracing::debug!(peer = %addr, "refused: --max-peers reached"),
            }
        }
    });
}

/// An incoming connection up to the peer's 68-byte handshake: plaintext (told apart by its first 20
/// bytes) or MSE (answered for any of our torrents), as `--encryption` allows.
async fn open(
    shared: &Shared,
    mut stream: AnyStream,
    addr: SocketAddr,
) -> Option<(EncryptedStream<AnyStream>, [u8; HANDSHAKE_LEN])> {
    let mode = shared.config.encryption;
    let mut first = [0u8; 20];
    stream.read_exact(&mut first).await.ok()?;
    let mut stream = if looks_plaintext(&first) {
        if mode == Encryption::Require {
            tracing::debug!(peer = %addr, "refused: plaintext, and --encryption require");
            return None;
        }
        EncryptedStream::plain(stream, first.to_vec())
    } else {
        if mode == Encryption::Disable {
            tracing::debug!(peer = %addr, "refused: not a plaintext handshake, and --encryption disable");
            return None;
        }
        let torrents: Vec<[u8; 20]> = shared.torrents().keys().map(|h| h.0).collect();
        match super::mse::respond(stream, &first, torrents, mode).await {
            Ok((_, s)) => s,
            Err(e) => {
                tracing::debug!(peer = %addr, error = %e, "refused: MSE failed");
                return None;
            }
        }
    };
    let mut theirs = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut theirs).await.ok()?;
    Some((stream, theirs))
}

/// Reads an incoming peer's handshake and finds the torrent it names; `None` (the connection is
/// dropped) for a torrent we do not have, a malformed handshake, silence, or no room.
async fn route(
    shared: &Shared,
    stream: AnyStream,
    addr: SocketAddr,
) -> Option<(Arc<Ctx>, EncryptedStream<AnyStream>, [u8; HANDSHAKE_LEN])> {
    let (stream, theirs) = tokio::time::timeout(HANDSHAKE_TIMEOUT, open(shared, stream, addr))
        .await
        .ok()??;
    let hs = Handshake::decode(&theirs).ok()?;
    let Some(ctx) = shared.torrent(&hs.info_hash) else {
        tracing::debug!(peer = %addr, info_hash = %hs.info_hash, "refused: not one of our torrents");
        return None;
    };
    if !shared.has_room() {
        tracing::debug!(peer = %addr, "refused: the global connection limit is reached");
        return None;
    }
    Some((ctx, stream, theirs))
}
