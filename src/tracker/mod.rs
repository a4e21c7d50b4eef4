//! Client side of trackers: one [`TrackerClient`] that announces and scrapes over HTTP(S) (BEP 3, 23, 7,
//! 48) and UDP (BEP 15), BEP 12 [`tiers`], and [`probe`] (what `--announce-only` runs).
//!
//! The wire vocabulary the server shares ([`Event`], compact peers, BEP 15 headers, the bencoded
//! replies) is [`proto`]. The codecs (`proto`, `http::parse_*`, `udp::encode_*`/`parse_reply`) are pure; the client does the IO with a
//! timeout on every step. A tracker that lies, stalls or sends garbage costs one [`TrackerError`] for that
//! tracker, never a panic.

pub mod http;
pub mod probe;
pub mod proto;
pub mod tiers;
pub mod udp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fetch::FetchError;
use crate::text::line as sanitize;
use crate::types::{InfoHash, PeerId};

pub use proto::Event;

/// Most peers kept from one reply; a tracker that sends more is trimmed, not trusted.
pub const MAX_PEERS_PER_REPLY: usize = 1000;

/// What we tell a tracker.
#[derive(Debug, Clone)]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port we accept peers on.
    pub port: u16,
    /// Bytes uploaded this session.
    pub uploaded: u64,
    /// Bytes downloaded this session.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// Why we announce.
    pub event: Event,
    /// How many peers we want (`None`: the tracker's default).
    pub numwant: Option<u32>,
    /// Random per-session key, so the tracker knows us across IP changes.
    pub key: u32,
    /// `tracker id` the tracker gave us earlier, echoed back (HTTP only).
    pub tracker_id: Option<Vec<u8>>,
}

/// What a tracker answered to an announce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Seconds until the next regular announce, as the tracker said.
    pub interval: Option<u32>,
    /// Seconds before which we must not re-announce.
    pub min_interval: Option<u32>,
    /// Seeders (`complete`).
    pub seeders: Option<u32>,
    /// Leechers (`incomplete`).
    pub leechers: Option<u32>,
    /// Peers (IPv4 and IPv6), at most [`MAX_PEERS_PER_REPLY`].
    pub peers: Vec<SocketAddr>,
    /// `tracker id` to echo in later announces.
    pub tracker_id: Option<Vec<u8>>,
    /// `warning message`, sanitised.
    pub warning: Option<String>,
}

/// A torrent's figures from a scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u32,
    /// Completed downloads ever.
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
}

/// Why one tracker gave us nothing.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// The tracker refused, with its reason (`failure reason` or a UDP error).
    #[error("tracker refused: {0}")]
    Failure(String),
    /// Could not talk HTTP to it.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// An HTTP error status without a bencoded reason.
    #[error("HTTP {status} {reason}")]
    Status { status: u16, reason: &'static str },
    /// The reply is not a tracker reply.
    #[error("bad reply: {0}")]
    Malformed(String),
    /// No answer in time (UDP retransmissions exhausted, or an overall deadline).
    #[error("no answer after {0:?}")]
    Timeout(Duration),
    /// A UDP socket or DNS failure.
    #[error("{0}")]
    Io(String),
    /// A scheme we do not speak (`wss://`, ...).
    #[error("unsupported tracker scheme `{0}` (http, https and udp are supported)")]
    Unsupported(String),
    /// Not a usable URL.
    #[error("invalid tracker URL: {0}")]
    BadUrl(String),
    /// The URL has no scrape counterpart (BEP 48: the last path part must start with `announce`).
    #[error("this tracker URL has no scrape URL")]
    NoScrape,
}

/// Timeouts and bounds of the tracker client; every default says why.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Whole HTTP request, body included: 30 s, libtorrent's `tracker_completion_timeout` is 30 s too.
    pub http_timeout: Duration,
    /// TCP/TLS connect: 10 s, so a black-holed tracker does not eat the whole request timeout.
    pub connect_timeout: Duration,
    /// First UDP wait; the n-th retransmission waits `base * 2^n` (BEP 15: 15 s).
    pub udp_base_timeout: Duration,
    /// Highest n in `base * 2^n` before giving up (BEP 15: 8).
    pub udp_max_retries: u32,
    /// How long a UDP connection id may be reused (BEP 15: one minute).
    pub udp_connection_ttl: Duration,
    /// Largest HTTP reply body accepted.
    pub max_body: usize,
    /// The address and interface every tracker socket comes from (`--bind`, `--interface`).
    pub bind: crate::net::Bind,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            http_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            udp_base_timeout: Duration::from_secs(15),
            udp_max_retries: 8,
            udp_connection_ttl: Duration::from_secs(60),
            max_body: crate::bencode::Limits::TRACKER_REPLY.max_len,
            bind: crate::net::Bind::default(),
        }
    }
}

/// Announces and scrapes any supported tracker URL. Cheap to share behind an `Arc`.
pub struct TrackerClient {
    config: TrackerConfig,
    http: reqwest::Client,
    /// One UDP endpoint per tracker URL, so connection ids are reused. Never held across `.await`.
    udp: Mutex<HashMap<String, Arc<udp::UdpTracker>>>,
}

impl TrackerClient {
    /// A client with its own HTTP connection pool.
    pub fn new(config: TrackerConfig) -> Result<TrackerClient, TrackerError> {
        let http = crate::fetch::client_without_pool(config.connect_timeout, &config.bind)?;
        Ok(TrackerClient {
            config,
            http,
            udp: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Announces to `url`.
    pub async fn announce(
        &self,
        url: &str,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        match scheme(url)? {
            Scheme::Http => http::announce(&self.http, &self.config, url, req).await,
            Scheme::Udp => self.udp_tracker(url)?.announce(&self.config, req).await,
        }
    }

    /// Scrapes `url` for `hashes` (BEP 48 for HTTP, action 2 for UDP).
    pub async fn scrape(
        &self,
        url: &str,
        hashes: &[InfoHash],
    ) -> Result<HashMap<InfoHash, ScrapeStats>, TrackerError> {
        match scheme(url)? {
            Scheme::Http => http::scrape(&self.http, &self.config, url, hashes).await,
            Scheme::Udp => self.udp_tracker(url)?.scrape(&self.config, hashes).await,
        }
    }

    fn udp_tracker(&self, url: &str) -> Result<Arc<udp::UdpTracker>, TrackerError> {
        let mut map = self
            .udp
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(t) = map.get(url) {
            return Ok(t.clone());
        }
        let tracker = Arc::new(udp::UdpTracker::new(url)?);
        map.insert(url.to_string(), tracker.clone());
        Ok(tracker)
    }
}

enum Scheme {
    Http,
    Udp,
}

fn scheme(url: &str) -> Result<Scheme, TrackerError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https") => Ok(Scheme::Http),
        Some("udp") => Ok(Scheme::Udp),
        Some(other) => Err(TrackerError::Unsupported(sanitize(other))),
        None => Err(TrackerError::BadUrl(sanitize(url))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_dispatch() {
        assert!(matches!(scheme("HTTP://a/announce"), Ok(Scheme::Http)));
        assert!(matches!(scheme("https://a/announce"), Ok(Scheme::Http)));
        assert!(matches!(scheme("udp://a:1"), Ok(Scheme::Udp)));
        assert!(matches!(scheme("wss://a"), Err(TrackerError::Unsupported(s)) if s == "wss"));
        assert!(matches!(scheme("nonsense"), Err(TrackerError::BadUrl(_))));
    }
}
