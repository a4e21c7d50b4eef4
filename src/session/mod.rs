//! One torrent alive: storage opened and re-checked, a listening socket, the trackers announced to,
//! peers dialled and accepted (one task each), pieces verified and stored, until every piece is on
//! disk, a fatal error, or Ctrl-C. The binaries drive it through [`start`] and a [`Handle`].

pub mod announce;
pub mod choker;
pub mod engine;
pub mod link;
pub mod magnet;
pub mod metadata;
pub mod peer;
pub mod pool;
mod progress;
pub mod state;
pub mod upload;
mod verify;
pub mod webseed;

use progress::{outcome, send_progress};
pub use progress::{Outcome, Snapshot};

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use tokio::sync::{watch, Notify};

use crate::metainfo::{FileEntry, Metainfo};
use crate::net::Bind;
use crate::picker::{Picker, Strategy};
use crate::storage::mmap::MmapStorage;
use crate::storage::{recheck, Storage, StorageError};
use crate::types::{InfoHash, Lengths, PeerId};
use state::Torrent;

/// The session's clock: tokio's, so tests that pause time move every deadline of the session (the
/// pure modules take `std::time::Instant`s, which this gives).
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Settings of one download, each default with its reason.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory the torrent's files go under.
    pub output: PathBuf,
    /// The address and interface of every socket: the listener, peer connections, trackers, web
    /// seeds. Default: any address, any interface, like every client.
    pub net: Bind,
    /// Port to listen on (and announce): 6881, the BitTorrent default; the next free one up to
    /// `port + 8` if taken; 0 for any.
    pub port: u16,
    /// Most connected peers: 50, enough to saturate a home link without exhausting a router.
    pub max_peers: usize,
    /// Piece order: rarest first.
    pub strategy: Strategy,
    /// A fixed request window per peer (`None`: adaptive, from 10 up).
    pub requests_per_peer: Option<usize>,
    /// Time for a TCP connect: 10 s (a SYN retried twice).
    pub connect_timeout: Duration,
    /// Memory for pieces being assembled: 64 MiB keeps peak RSS far below 256 MiB while letting
    /// 50 peers each work on their own pieces of up to 1 MiB.
    pub max_partial_bytes: u64,
    /// Threads for the start-up re-check: every core.
    pub hash_threads: usize,
    /// Keep running after the download (or with the data already complete) to upload: off, as a
    /// download command should end when the download does.
    pub seed: bool,
    /// Stop seeding after this long (`None`: until interrupted).
    pub seed_time: Option<Duration>,
    /// Stop seeding once uploaded / size reaches this (`None`: no limit).
    pub seed_ratio: Option<f64>,
    /// Web seed URLs (BEP 19): the torrent's `url-list` unless turned off, plus any given.
    pub web_seeds: Vec<String>,
    /// Peers to dial besides those the trackers name, with where they came from (`--peer`, a
    /// magnet link's `x.pe`).
    pub peers: Vec<(std::net::SocketAddr, pool::PeerSource)>,
    /// Connections per web seed: 2, so one request's round trip overlaps the other's transfer
    /// (libtorrent uses 1, aria2 up to 5 split over mirrors); bounded so a mirror never sees a flood.
    pub web_seed_connections: usize,
}

impl Config {
    /// Defaults for downloading into `output`.
    pub fn new(output: PathBuf) -> Config {
        Config {
            output,
            net: Bind::default(),
            port: 6881,
            max_peers: 50,
            strategy: Strategy::Rarest,
            requests_per_peer: None,
            connect_timeout: Duration::from_secs(10),
            max_partial_bytes: 64 * 1024 * 1024,
            hash_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            seed: false,
            seed_time: None,
            seed_ratio: None,
            web_seeds: Vec::new(),
            peers: Vec::new(),
            web_seed_connections: 2,
        }
    }
}

/// Where the download stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Still fetching.
    Running,
    /// Every piece verified.
    Complete,
    /// Stopped by an error that concerns the whole torrent.
    Failed(String),
}

/// Why a download did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The output directory cannot be used.
    #[error("cannot write to the output directory {path}: {error}")]
    Output { path: String, error: std::io::Error },
    /// Storage failed (disk full, IO error).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {error}")]
    Listen { addr: String, error: std::io::Error },
    /// No tracker answered and no peer was found.
    #[error(
        "nothing to download from: no tracker answered, no peer found, no web seed left ({0})"
    )]
    NoPeers(String),
    /// The torrent has no way to find peers or data.
    #[error(
        "the torrent lists no trackers and no web seeds, and no --peer was given (DHT is not \
         supported yet)"
    )]
    NoTrackers,
    /// A magnet link's metadata could not be had.
    #[error("cannot get the torrent's metadata: {0}")]
    NoMetadata(String),
    /// Interrupted by the user.
    #[error("interrupted")]
    Interrupted,
    /// Anything else fatal.
    #[error("{0}")]
    Fatal(String),
}

/// What the tasks of one torrent share.
pub struct Ctx {
    pub(crate) info_hash: InfoHash,
    pub(crate) peer_id: PeerId,
    pub(crate) key: u32,
    pub(crate) lengths: Lengths,
    /// The port we listen on (0 until bound).
    pub(crate) port: u16,
    pub(crate) hashes: Vec<[u8; 20]>,
    /// The raw `info` dictionary, served to peers that ask for it (BEP 9).
    pub(crate) info_bytes: Arc<[u8]>,
    /// A private torrent (BEP 27): no peer exchange.
    pub(crate) private: bool,
    /// The files, in torrent order (web seeds request per file).
    pub(crate) files: Vec<FileEntry>,
    pub(crate) config: Config,
    pub(crate) storage: Arc<dyn Storage>,
    /// The torrent's state. A `std` mutex, held only in short synchronous sections and never across
    /// an `.await`.
    torrent: Mutex<Torrent>,
    /// Wakes the dialler (a peer left, a tracker brought addresses).
    pub(crate) wake: Notify,
    /// Tells announcers we are short of peers.
    pub(crate) need_peers: Notify,
    /// Tells the choker a peer became interested.
    pub(crate) interest: Notify,
    /// Tells peer tasks that blocks went back to the picker (a peer stalled, choked or left), so an
    /// idle one asks for them now rather than at its next tick.
    pub(crate) blocks_freed: Notify,
    pub(crate) status: watch::Sender<Status>,
    pub(crate) shutdown: watch::Sender<bool>,
    /// The engine this torrent runs on (routing of incoming peers, global limits).
    pub(crate) engine: Arc<engine::Shared>,
}

impl Ctx {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Torrent> {
        self.torrent.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn fail(&self, why: String) {
        self.status.send_if_modified(|s| {
            let first = matches!(s, Status::Running);
            if first {
                *s = Status::Failed(why.clone());
            }
            first
        });
    }
}

/// A running download.
pub struct Handle {
    /// Progress samples, about twice a second.
    pub progress: watch::Receiver<Snapshot>,
    /// The download itself.
    pub done: tokio::task::JoinHandle<Result<Outcome, SessionError>>,
}

/// Starts downloading `meta` as `config` says, on `engine`; `stop` resolving means the user asked
/// to stop.
pub fn start(
    engine: &engine::Engine,
    meta: Arc<Metainfo>,
    config: Config,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Handle {
    let (tx, rx) = watch::channel(Snapshot {
        total: meta.info.lengths.total(),
        checking: true,
        ..Snapshot::default()
    });
    let shared = engine.shared.clone();
    let done = tokio::spawn(async move {
        let info_hash = meta.info_hash;
        let result = run(meta, config, tx, stop, &shared).await;
        shared.detach(&info_hash);
        result
    });
    Handle { progress: rx, done }
}

async fn run(
    meta: Arc<Metainfo>,
    config: Config,
    progress: watch::Sender<Snapshot>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    engine: &Arc<engine::Shared>,
) -> Result<Outcome, SessionError> {
    let started = crate::session::now();
    let tiers = meta.tiers();
    if tiers.is_empty() && config.web_seeds.is_empty() && config.peers.is_empty() {
        return Err(SessionError::NoTrackers);
    }
    std::fs::create_dir_all(&config.output).map_err(|error| SessionError::Output {
        path: config.output.display().to_string(),
        error,
    })?;
    check_writable(&config.output)?;
    let lengths = meta.info.lengths;
    let (storage, have) = {
        let meta = meta.clone();
        let output = config.output.clone();
        let threads = config.hash_threads;
        tokio::task::spawn_blocking(move || -> Result<_, StorageError> {
            let opened = MmapStorage::open(&output, &meta.info)?;
            let have = recheck(
                &opened.storage,
                &meta.info.piece_hashes,
                &opened.maybe_present,
                threads,
            );
            Ok((Arc::new(opened.storage) as Arc<dyn Storage>, have))
        })
        .await
        .map_err(|e| SessionError::Fatal(format!("start-up check failed: {e}")))??
    };
    let pieces_on_disk = have.count();
    tracing::debug!(
        pieces_on_disk,
        pieces = lengths.piece_count(),
        "re-check done"
    );

    let port = engine.port;
    let max_active = (config.max_partial_bytes / u64::from(lengths.piece_length())).max(2) as usize;
    let picker = Picker::new(lengths, config.strategy, have, max_active);
    let (status, _) = watch::channel(Status::Running);
    let (shutdown, _) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        info_hash: meta.info_hash,
        peer_id: PeerId::generate(&mut rand::rng()),
        key: rand::random(),
        lengths,
        port,
        hashes: meta.info.piece_hashes.clone(),
        info_bytes: meta.info_bytes.clone().into(),
        private: meta.info.private,
        files: meta.info.files.clone(),
        config: config.clone(),
        storage,
        torrent: Mutex::new(Torrent::new(picker, rand::rngs::StdRng::from_os_rng())),
        wake: Notify::new(),
        need_peers: Notify::new(),
        interest: Notify::new(),
        blocks_freed: Notify::new(),
        status,
        shutdown,
        engine: engine.clone(),
    });
    if ctx.lock().picker.is_complete() && !config.seed {
        ctx.status.send_replace(Status::Complete);
        send_progress(&ctx, &progress);
        return Ok(outcome(&ctx, pieces_on_disk, started, None, 0));
    }
    ctx.engine.attach(ctx.clone());

    {
        let mut t = ctx.lock();
        for &(addr, source) in &config.peers {
            t.pool.add(&[addr], source, now());
        }
    }
    let client = engine.tracker.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for mirror in webseed::mirrors(&ctx, &meta) {
        let client = crate::fetch::client(config.connect_timeout, &config.net)
            .map_err(|e| SessionError::Fatal(e.to_string()))?;
        let mirror = Arc::new(mirror);
        for _ in 0..config.web_seed_connections.max(1) {
            tasks.spawn(webseed::connection(
                ctx.clone(),
                client.clone(),
                mirror.clone(),
            ));
        }
    }
    tasks.spawn(dial_loop(ctx.clone()));
    tasks.spawn(choke_loop(ctx.clone()));
    let mut announcers = tokio::task::JoinSet::new();
    ctx.lock().trackers.tiers = tiers.len();
    for urls in tiers {
        announcers.spawn(announce::tier(ctx.clone(), client.clone(), urls, port));
    }

    let mut status = ctx.status.subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut seeding_since = None;
    if *status.borrow() == Status::Complete || ctx.lock().picker.is_complete() {
        seeding_since = Some(crate::session::now());
    }
    tokio::pin!(stop);
    let result = loop {
        tokio::select! {
            _ = &mut stop => break if seeding_since.is_some() { Ok(()) } else { Err(SessionError::Interrupted) },
            _ = status.changed() => {
                let s = status.borrow().clone();
                match s {
                    Status::Running => {}
                    Status::Complete if config.seed => {
                        if seeding_since.is_none() {
                            seeding_since = Some(crate::session::now());
                            let storage = ctx.storage.clone();
                            // Durable before we announce `completed`; seeding goes on meanwhile.
                            tokio::task::spawn_blocking(move || storage.flush());
                            tracing::info!("download complete; seeding");
                        }
                    }
                    Status::Complete => break Ok(()),
                    Status::Failed(why) => break Err(SessionError::Fatal(why)),
                }
            }
            _ = tick.tick() => {
                send_progress(&ctx, &progress);
                if let Some(since) = seeding_since {
                    if seed_done(&ctx, &config, since) {
                        break Ok(());
                    }
                } else if let Some(why) = hopeless(&ctx, started) {
                    break Err(SessionError::NoPeers(why));
                }
            }
        }
    };
    // Shut down: peers and dialler stop, announcers say `completed`/`stopped` (bounded), data is
    // flushed (bounded on interrupt: the page cache keeps it either way).
    ctx.shutdown.send_replace(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while announcers.join_next().await.is_some() {}
    })
    .await;
    announcers.abort_all();
    tasks.abort_all();
    tracing::debug!("announcers done; flushing");
    let storage = ctx.storage.clone();
    let flush = tokio::task::spawn_blocking(move || storage.flush());
    let flushed = match &result {
        Err(SessionError::Interrupted) => tokio::time::timeout(Duration::from_millis(700), flush)
            .await
            .ok(),
        _ => Some(flush.await),
    };
    send_progress(&ctx, &progress);
    result?;
    if let Some(Ok(Err(e))) = flushed {
        return Err(e.into());
    }
    Ok(outcome(&ctx, pieces_on_disk, started, seeding_since, port))
}

/// Fails fast on an output directory we cannot write, before any network traffic.
fn check_writable(dir: &std::path::Path) -> Result<(), SessionError> {
    let probe = dir.join(format!(".pixtorrent-write-test-{}", std::process::id()));
    let result = std::fs::write(&probe, b"");
    let _ = std::fs::remove_file(&probe);
    result.map_err(|error| SessionError::Output {
        path: dir.display().to_string(),
        error,
    })
}

/// `Some(reason)` when every tracker has failed at least once, none ever answered, and we have no
/// peer and no address to try: nothing will ever arrive.
fn hopeless(ctx: &Ctx, started: Instant) -> Option<String> {
    let t = ctx.lock();
    if t.web.iter().any(|w| w.health.dropped().is_none()) {
        return None;
    }
    let web = t.web.iter().rev().find_map(|w| w.health.last_error());
    let all_tried = t.trackers.tiers_tried >= t.trackers.tiers && t.trackers.answered == 0;
    let no_peers = t.peers.is_empty() && t.pool.idle() == 0 && t.pool.connecting() == 0;
    let settled = crate::session::now().saturating_duration_since(started) > Duration::from_secs(5);
    (all_tried && no_peers && settled && t.trackers.peers_seen == 0).then(|| {
        let trackers = if t.trackers.tiers == 0 {
            None
        } else {
            Some(
                t.trackers
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "no tracker answered".into()),
            )
        };
        match (trackers, web) {
            (Some(tr), Some(w)) => format!("{tr}; every web seed failed, last: {w}"),
            (Some(tr), None) => tr,
            (None, Some(w)) => format!("every web seed failed, last: {w}"),
            (None, None) => "no peer given with --peer could be reached".to_string(),
        }
    })
}

/// Whether seeding has gone on long enough (`--seed-time`) or given back enough (`--seed-ratio`).
fn seed_done(ctx: &Ctx, config: &Config, since: Instant) -> bool {
    if config
        .seed_time
        .is_some_and(|t| crate::session::now().saturating_duration_since(since) >= t)
    {
        return true;
    }
    let uploaded = ctx.lock().uploaded as f64;
    config
        .seed_ratio
        .is_some_and(|r| uploaded >= r * ctx.lengths.total() as f64)
}

/// Every 10 s (and at once when a peer becomes interested while a slot is free) decides who we
/// upload to and tells the peers whose state changes.
async fn choke_loop(ctx: Arc<Ctx>) {
    let mut choker = choker::Choker::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = ctx.interest.notified() => {
                let t = ctx.lock();
                let busy = t.peers.values().filter(|p| p.unchoked).count();
                if busy > choker::SLOTS {
                    continue;
                }
            }
        }
        let mut guard = ctx.lock();
        let t = &mut *guard;
        let seeding = t.picker.is_complete();
        let candidates: Vec<choker::Candidate> = t
            .peers
            .iter()
            .map(|(k, p)| choker::Candidate {
                key: *k,
                interested: p.stats.interested,
                rate: if seeding {
                    p.stats.up_rate
                } else {
                    p.stats.down_rate
                },
                snubbed: !seeding && p.stats.snubbed,
                new: p.stats.new,
            })
            .collect();
        let unchoke = choker.round(&candidates, &mut t.rng);
        for (k, p) in t.peers.iter_mut() {
            let want = unchoke.contains(k);
            if want != p.unchoked {
                p.unchoked = want;
                let _ = p.tx.send(if want {
                    state::Command::Unchoke
                } else {
                    state::Command::Choke
                });
            }
        }
    }
}

async fn dial_loop(ctx: Arc<Ctx>) {
    let mut last_need = crate::session::now();
    loop {
        // Asked before our own lock is taken: the engine locks each torrent in turn.
        let global_room = ctx.engine.has_room();
        let due = {
            let mut t = ctx.lock();
            let room = if global_room {
                ctx.config.max_peers.saturating_sub(t.busy())
            } else {
                0
            };
            let due = t.pool.due(crate::session::now(), room);
            let short = t.peers.len() < ctx.config.max_peers / 2 && t.pool.idle() == 0;
            if short
                && crate::session::now().saturating_duration_since(last_need)
                    > Duration::from_secs(5)
            {
                last_need = crate::session::now();
                ctx.need_peers.notify_waiters();
            }
            due
        };
        for addr in due {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let result = link::connect(ctx.clone(), addr).await;
                let permanent = result.as_ref().is_err_and(|e| e.is_permanent());
                {
                    let mut t = ctx.lock();
                    t.pool.ended(addr, permanent, crate::session::now());
                }
                ctx.wake.notify_one();
            });
        }
        tokio::select! {
            _ = ctx.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests;
