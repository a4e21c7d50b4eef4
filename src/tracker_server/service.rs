//! What HTTP and UDP share: the tracker's policy over a store (whitelist, intervals, whose address
//! counts) and its counters for `/stats` and `/metrics`.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::query::Announce;
use super::store::{AnnounceIn, AnnounceOut, Counts, Limit, StoreError, SwarmStore};
use super::swarm::Peer;
use crate::types::InfoHash;

/// How the tracker answers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `interval` in replies, seconds; `min interval` is half of it.
    pub interval: u32,
    /// Only these info-hashes are tracked, when set.
    pub whitelist: Option<HashSet<InfoHash>>,
    /// Use the announce's `ip` parameter (only behind something that sets it honestly).
    pub trust_ip_param: bool,
}

/// Request counters.
#[derive(Debug, Default)]
pub struct Counters {
    pub announces: AtomicU64,
    pub scrapes: AtomicU64,
    /// Requests answered with a failure (bad request, whitelist, store down or full).
    pub failures: AtomicU64,
    /// Announces refused because a new swarm would pass `--max-torrents`.
    pub refused_torrents: AtomicU64,
    /// Announces refused because a new peer would pass `--max-peers-total`.
    pub refused_peers: AtomicU64,
    pub udp_connects: AtomicU64,
    /// UDP datagrams dropped because their source was over its rate.
    pub udp_limited: AtomicU64,
    /// Announces per second over the last few seconds, ×1000.
    pub rate_milli: AtomicU64,
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A counter's value.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// The tracker over store `S`.
pub struct Tracker<S> {
    pub store: S,
    pub settings: Settings,
    pub counters: Counters,
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl<S: SwarmStore> Tracker<S> {
    pub fn new(store: S, settings: Settings) -> Tracker<S> {
        Tracker {
            store,
            settings,
            counters: Counters::default(),
        }
    }

    pub fn min_interval(&self) -> u32 {
        (self.settings.interval / 2).max(1)
    }

    fn allowed(&self, hash: &InfoHash) -> bool {
        self.settings
            .whitelist
            .as_ref()
            .is_none_or(|w| w.contains(hash))
    }

    /// Applies an announce from `from` (the connection's address); `Err` is the failure reason.
    pub async fn announce(&self, a: &Announce, from: IpAddr) -> Result<AnnounceOut, String> {
        bump(&self.counters.announces);
        let result = self.announce_inner(a, from).await;
        if result.is_err() {
            bump(&self.counters.failures);
        }
        tracing::debug!(
            from = %from,
            port = a.port,
            event = ?a.event,
            left = ?a.left,
            result = %result.as_ref().map_or_else(|e| e.clone(), |o| format!("{} seeders, {} leechers, {} peers", o.counts.complete, o.counts.incomplete, o.peers.len())),
            "announce"
        );
        result
    }

    async fn announce_inner(&self, a: &Announce, from: IpAddr) -> Result<AnnounceOut, String> {
        if !self.allowed(&a.info_hash) {
            return Err("torrent not on this tracker's whitelist".into());
        }
        let ip = match a.ip {
            Some(ip) if self.settings.trust_ip_param => ip,
            _ => from,
        };
        let peer = Peer {
            id: a.peer_id,
            addr: SocketAddr::new(ip.to_canonical(), a.port),
            seeder: a.left == Some(0),
        };
        self.store
            .announce(AnnounceIn {
                info_hash: a.info_hash,
                peer,
                event: a.event,
                numwant: a.numwant,
                now: now(),
            })
            .await
            .map_err(|e| {
                if let StoreError::Full { limit, .. } = e {
                    bump(match limit {
                        Limit::Torrents => &self.counters.refused_torrents,
                        Limit::Peers => &self.counters.refused_peers,
                    });
                }
                e.to_string()
            })
    }

    /// Figures for each hash (zeros for torrents not tracked).
    pub async fn scrape(&self, hashes: &[InfoHash]) -> Result<Vec<Counts>, String> {
        bump(&self.counters.scrapes);
        let allowed: Vec<InfoHash> = hashes.iter().filter(|h| self.allowed(h)).copied().collect();
        let counts = match self.store.scrape(&allowed, now()).await {
            Ok(c) => c,
            Err(e) => {
                bump(&self.counters.failures);
                return Err(e.to_string());
            }
        };
        Ok(hashes
            .iter()
            .map(|h| {
                allowed
                    .iter()
                    .position(|a| a == h)
                    .map(|i| counts[i])
                    .unwrap_or_default()
            })
            .collect())
    }

    /// Announces per second, smoothed.
    pub fn rate(&self) -> f64 {
        self.counters.rate_milli.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

/// Every `every`: sweeps expired peers and refreshes the announce rate. Runs until aborted.
pub async fn housekeeping<S: SwarmStore>(t: std::sync::Arc<Tracker<S>>, sweep_every: Duration) {
    let mut last = (std::time::Instant::now(), 0u64);
    let mut next_sweep = std::time::Instant::now() + sweep_every;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let n = t.counters.announces.load(Ordering::Relaxed);
        let dt = last.0.elapsed().as_secs_f64();
        if dt > 0.0 {
            let rate = (n - last.1) as f64 / dt;
            t.counters
                .rate_milli
                .store((rate * 1000.0) as u64, Ordering::Relaxed);
        }
        last = (std::time::Instant::now(), n);
        if std::time::Instant::now() >= next_sweep {
            next_sweep = std::time::Instant::now() + sweep_every;
            match t.store.sweep(now()).await {
                Ok(n) if n > 0 => tracing::debug!(expired = n, "swept"),
                Ok(_) => {}
                Err(e) => tracing::warn!("sweep failed: {e}"),
            }
        }
    }
}
