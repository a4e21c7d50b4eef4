//! `pixtorrent-tracker`: an HTTP (and optionally UDP) BitTorrent tracker over a swarm store that is
//! either in memory (the default: no set-up) or Redis (several tracker processes, one swarm state).
//!
//! | module | responsibility | pure? |
//! |---|---|---|
//! | [`query`] | raw announce/scrape query → request, with bounds | yes |
//! | [`swarm`] | one swarm's rules: events, counts, expiry, random sample without the asker | yes |
//! | [`reply`] | what an announce/scrape/failure reply says, written by `crate::tracker::proto` | yes |
//! | [`hmac`] | HMAC-SHA1 for UDP connection ids | yes |
//! | [`store`] | the `SwarmStore` trait, the chosen store, and its bounds (`Limits`) | trait |
//! | [`memory`], [`redis_store`] | the two stores | IO (locks, Redis) |
//! | [`service`] | policy shared by HTTP and UDP (whitelist, intervals, counters), housekeeping | IO |
//! | [`conns`] | live HTTP connections: admission under the cap, which one to evict | yes |
//! | [`ratelimit`] | per-source token buckets for UDP in a fixed-size table | yes |
//! | [`listener`] | HTTP accept loop: cap, eviction, head deadline, idle rule; the connection-per-announce shortcut past hyper | IO |
//! | [`http`], [`udp`] | the faces | IO |
//!
//! Imports: `query`, `swarm`, `reply`, `hmac`, `conns`, `ratelimit` use nothing outside this module
//! but `rand`, `crate::types` (`InfoHash`, `PeerId`) and the protocol vocabulary shared with the
//! client, `crate::tracker::proto` (events, compact peers, BEP 15 datagrams, bencoded replies); the
//! rest of the tracker client (`crate::tracker`) appears only in tests, to read our replies back.

pub mod conns;
pub mod hmac;
pub mod http;
pub mod listener;
pub mod memory;
pub mod query;
pub mod ratelimit;
pub mod redis_store;
pub mod reply;
pub mod service;
pub mod store;
pub mod swarm;
pub mod udp;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderName;
use tokio::net::UdpSocket;

use self::memory::MemoryStore;
use self::redis_store::RedisStore;
use self::service::{Settings, Tracker};
use self::store::{AnyStore, SwarmStore};
use crate::types::InfoHash;

/// Everything the binary can set.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub udp: Option<SocketAddr>,
    pub redis: Option<String>,
    /// Nodes of a Redis Cluster (empty: none); exclusive with `redis`.
    pub redis_cluster: Vec<String>,
    pub redis_prefix: String,
    pub interval: u32,
    pub whitelist: Option<PathBuf>,
    pub trust_ip_param: bool,
    pub real_ip_header: Option<String>,
    pub max_connections: usize,
    /// A request head must arrive whole within this ([`listener::HEAD_TIMEOUT`] by default).
    pub head_timeout: Duration,
    /// UDP datagrams a second per source address (bursts of twice that); 0: no limit.
    pub udp_rate: u32,
    /// Most swarms and peers held ([`store::Limits::default`] by default).
    pub limits: store::Limits,
}

/// `--udp-rate` by default: a busy NAT gateway or a seedbox starting a thousand torrents sends a
/// few hundred datagrams a second; one flooding address is held to a small share of what a tracker
/// answers (some 100,000 a second).
pub const DEFAULT_UDP_RATE: u32 = 500;

/// Why the tracker could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("whitelist {path}: {why}")]
    Whitelist { path: String, why: String },
    #[error("redis {url}: {why}")]
    Redis { url: String, why: String },
    #[error("--real-ip-header {0:?} is not a valid header name")]
    Header(String),
    #[error("{0}")]
    Serve(std::io::Error),
}

/// Reads a whitelist: one hex info-hash per line; blank lines and `#` comments are skipped.
pub fn read_whitelist(path: &Path) -> Result<HashSet<InfoHash>, ServerError> {
    let err = |why: String| ServerError::Whitelist {
        path: path.display().to_string(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > 64 << 20 {
        return Err(err("larger than 64 MiB".into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let mut set = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let hash = InfoHash::from_hex(line)
            .ok_or_else(|| err(format!("line {}: not a 40-digit hex info-hash", n + 1)))?;
        set.insert(hash);
    }
    Ok(set)
}

/// The addresses actually bound (port 0 picks one).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub http: SocketAddr,
    pub udp: Option<SocketAddr>,
}

/// Binds, then serves until `shutdown` resolves. `on_bound` hears the addresses once listening.
pub async fn run(
    config: Config,
    on_bound: impl FnOnce(Bound, &str),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let whitelist = match &config.whitelist {
        Some(p) => Some(read_whitelist(p)?),
        None => None,
    };
    let real_ip_header = match &config.real_ip_header {
        Some(h) => {
            Some(HeaderName::try_from(h.as_str()).map_err(|_| ServerError::Header(h.clone()))?)
        }
        None => None,
    };
    // Peers expire after about two intervals without an announce.
    let ttl = 2 * u64::from(config.interval) + 30;
    let store = match (&config.redis, config.redis_cluster.is_empty()) {
        (None, true) => AnyStore::Memory(MemoryStore::new(ttl, config.limits)),
        (redis, _) => {
            let url = redis
                .clone()
                .unwrap_or_else(|| config.redis_cluster.join(","));
            let redis_err = |why: String| ServerError::Redis {
                url: url.clone(),
                why,
            };
            let prefix = &config.redis_prefix;
            let store = match redis {
                Some(url) => RedisStore::new(url, prefix, ttl, config.limits),
                None => RedisStore::cluster(&config.redis_cluster, prefix, ttl, config.limits),
            }
            .map_err(|e| redis_err(e.to_string()))?;
            store.health().await.map_err(|e| redis_err(e.to_string()))?;
            AnyStore::Redis(store)
        }
    };
    let kind = store.kind();
    let tracker = Arc::new(Tracker::new(
        store,
        Settings {
            interval: config.interval,
            whitelist,
            trust_ip_param: config.trust_ip_param,
        },
    ));
    let tcp = listener::bind(config.listen).map_err(|error| ServerError::Listen {
        addr: config.listen,
        error,
    })?;
    let http_addr = tcp.local_addr().map_err(ServerError::Serve)?;
    let mut background = tokio::task::JoinSet::new();
    let mut udp_addr = None;
    if let Some(addr) = config.udp {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|error| ServerError::Listen { addr, error })?;
        udp_addr = Some(socket.local_addr().map_err(ServerError::Serve)?);
        background.spawn(udp::serve(socket, tracker.clone(), config.udp_rate));
    }
    let sweep_every = Duration::from_secs(u64::from(config.interval / 4).clamp(1, 60));
    background.spawn(service::housekeeping(tracker.clone(), sweep_every));
    on_bound(
        Bound {
            http: http_addr,
            udp: udp_addr,
        },
        kind,
    );
    let conns = Arc::new(listener::Connections::new(config.max_connections));
    let state = Arc::new(http::HttpState {
        tracker,
        real_ip_header,
        conns: conns.clone(),
    });
    let router = http::router(state.clone());
    let result = listener::serve(tcp, router, state, conns, config.head_timeout, shutdown).await;
    background.abort_all();
    result.map_err(ServerError::Serve)
}
