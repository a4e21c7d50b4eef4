//! Torrents alive on an [`engine::Engine`]: each one goes through its [`lifecycle`] (metadata,
//! checking, downloading, seeding) with its peers dialled and accepted (one task each), pieces
//! verified and stored, until every piece is on disk, a fatal error, or Ctrl-C. The binaries drive
//! one through [`start`] and a [`Handle`].

pub mod announce;
pub mod blame;
pub mod choker;
pub mod counters;
pub mod dial;
pub mod engine;
pub mod hashes;
pub mod lifecycle;
pub mod link;
mod loops;
pub mod magnet;
pub mod metadata;
pub mod mse;
pub mod peer;
pub mod pool;
mod progress;
mod resume;
mod run;
pub mod stall;
pub mod state;
pub mod upload;
mod verify;
pub mod webseed;

pub use progress::{Outcome, Snapshot};

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use crate::metainfo::{FileEntry, Metainfo};
use crate::net::Bind;
use crate::picker::Strategy;
use crate::storage::{Storage, StorageError};
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
    /// Where resume files live (`None`: no fast resume; every start re-checks).
    pub state_dir: Option<PathBuf>,
    /// Ignore the resume file and re-check every piece (`--recheck`).
    pub recheck: bool,
    /// When no source can supply any missing piece for this long, the run ends with exit status 3
    /// (`--stall-timeout`): 10 minutes (`None`: wait for ever).
    pub stall_timeout: Option<Duration>,
    /// Keep running after the download (or with the data already complete) to upload: off, as a
    /// download command should end when the download does.
    pub seed: bool,
    /// Stop seeding after this long (`None`: until interrupted).
    pub seed_time: Option<Duration>,
    /// Stop seeding once uploaded / size reaches this (`None`: no limit).
    pub seed_ratio: Option<f64>,
    /// Web seed URLs (BEP 19) given besides the torrent's `url-list`.
    pub web_seeds: Vec<String>,
    /// Use the torrent's (or magnet link's) own web seeds: on, as every client does.
    pub use_url_list: bool,
    /// Peers to dial besides those the trackers name, with where they came from (`--peer`, a
    /// magnet link's `x.pe`).
    pub peers: Vec<(std::net::SocketAddr, pool::PeerSource)>,
    /// Connections per web seed: 2, so one request's round trip overlaps the other's transfer
    /// (libtorrent uses 1, aria2 up to 5 split over mirrors); bounded so a mirror never sees a flood.
    pub web_seed_connections: usize,
    /// Which files to download (`--only`, `--exclude`, `--select-file`): all of them by default.
    pub select: crate::select::Spec,
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
            state_dir: None,
            recheck: false,
            stall_timeout: Some(Duration::from_secs(600)),
            seed: false,
            seed_time: None,
            seed_ratio: None,
            web_seeds: Vec::new(),
            use_url_list: true,
            peers: Vec::new(),
            web_seed_connections: 2,
            select: crate::select::Spec::default(),
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
    /// For `--stall-timeout`, no peer had a missing piece and no web seed could send one: the reason,
    /// then one line per file, complete or not (exit status 3).
    #[error("nothing can supply the missing pieces: {0}")]
    Unsuppliable(String),
    /// No network at all: no tracker, web seed or peer ever answered; one line per source follows.
    #[error("nothing to download from: no source answered in 60 s\n{0}")]
    NoNetwork(String),
    /// The torrent has no way to find peers or data.
    #[error(
        "the torrent lists no trackers and no web seeds, no --peer was given, and the DHT is off \
         (--no-dht, or a private torrent)"
    )]
    NoTrackers,
    /// The file selection does not fit the torrent.
    #[error(transparent)]
    Select(#[from] crate::select::SelectError),
    /// The torrent's pieces cannot be checked (a v2 torrent without its piece layers).
    #[error(transparent)]
    Check(#[from] crate::storage::check::CheckError),
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
    /// The torrent's name (its `info.name`).
    pub(crate) name: String,
    pub(crate) peer_id: PeerId,
    pub(crate) key: u32,
    pub(crate) lengths: Lengths,
    /// The port we listen on (0 until bound).
    pub(crate) port: u16,
    /// A hybrid's second swarm id, its truncated v2 info-hash (BEP 52): announced to and accepted
    /// beside `info_hash`. `None` for v1 and v2-only torrents (a v2-only one's is `info_hash`).
    pub(crate) v2_swarm: Option<InfoHash>,
    /// The torrent has a v2 side: our handshakes set the BEP 52 reserved bit.
    pub(crate) has_v2: bool,
    /// How a complete piece is judged (SHA-1, SHA-256 Merkle root, or both).
    pub(crate) check: Arc<crate::storage::PieceCheck>,
    /// The files' Merkle trees (v2 and hybrid torrents), served to peers' `hash request`s.
    pub(crate) trees: hashes::Trees,
    /// Failed v2 pieces waiting for their leaf hashes, to blame each bad block on its sender.
    pub(crate) blame: blame::Pending,
    /// The raw `info` dictionary, served to peers that ask for it (BEP 9).
    pub(crate) info_bytes: Arc<[u8]>,
    /// A private torrent (BEP 27): no peer exchange.
    pub(crate) private: bool,
    /// The files, in torrent order (web seeds request per file).
    pub(crate) files: Vec<FileEntry>,
    /// Which files are downloaded, and so which pieces are wanted.
    pub(crate) selection: crate::select::Selection,
    pub(crate) config: Config,
    pub(crate) storage: Arc<dyn Storage>,
    /// Byte counters, outside the lock (also held by the torrent state, which adds to them).
    pub(crate) counters: Arc<counters::Counters>,
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

    /// The DHT node, for a public torrent with the DHT on.
    pub(crate) fn dht(&self) -> Option<&crate::dht::node::Dht> {
        self.engine.dht.as_ref().filter(|_| !self.private)
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

/// What a torrent starts from.
pub enum Source {
    /// A `.torrent`: its metadata is known.
    Torrent(Arc<Metainfo>),
    /// A magnet link: the metadata is fetched first (or found saved in the output directory).
    Magnet(Box<crate::magnet::Magnet>),
}

impl Source {
    /// The info-hash the torrent is known by.
    pub fn info_hash(&self) -> InfoHash {
        match self {
            Source::Torrent(m) => m.info_hash,
            Source::Magnet(m) => m.info_hash,
        }
    }
}

/// Starts the torrent of `source` as `config` says, on `engine`; `stop` resolving means the user
/// asked to stop.
pub fn start(
    engine: &engine::Engine,
    source: Source,
    config: Config,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Handle {
    let (phase, total) = match &source {
        Source::Torrent(meta) => (lifecycle::Phase::Checking, meta.info.lengths.total()),
        Source::Magnet(_) => (lifecycle::Phase::Metadata, 0),
    };
    let (tx, rx) = watch::channel(Snapshot {
        total,
        phase,
        ..Snapshot::default()
    });
    let shared = engine.shared.clone();
    let done = tokio::spawn(async move {
        let info_hash = source.info_hash();
        let result = run::run(source, config, tx, stop, &shared).await;
        shared.detach(&info_hash);
        result
    });
    Handle { progress: rx, done }
}

#[cfg(test)]
mod tests;
