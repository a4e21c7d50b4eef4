//! Where swarms live: the [`SwarmStore`] trait, its in-memory ([`super::memory`]) and Redis
//! ([`super::redis_store`]) implementations behind [`AnyStore`], and the types they exchange. Every
//! method takes the time as a number (seconds), so tests drive the clock.

use std::future::Future;

use super::memory::MemoryStore;
use super::redis_store::RedisStore;
use super::swarm::Peer;

/// A torrent's figures (scrape and announce replies); `downloaded` counts the `completed` events
/// while the swarm has had peers. The announce [`Event`] a store applies. Both are the protocol's.
pub use crate::tracker::proto::{Counts, Event};

/// What a swarm is keyed by in the stores: its info-hash.
pub type Id = crate::types::InfoHash;

/// One announce, as the store applies it.
#[derive(Debug, Clone)]
pub struct AnnounceIn {
    pub info_hash: Id,
    pub peer: Peer,
    pub event: Event,
    /// Peers wanted back.
    pub numwant: usize,
    /// Seconds.
    pub now: u64,
}

/// What the store answers to an announce.
#[derive(Debug, Clone, Default)]
pub struct AnnounceOut {
    pub counts: Counts,
    /// A random sample of at most `numwant` other peers.
    pub peers: Vec<Peer>,
}

/// Everything the store holds, for `/stats` and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub torrents: u64,
    pub seeders: u64,
    pub leechers: u64,
    pub completed: u64,
}

/// `--max-torrents` by default: a flood of random info-hashes makes one-peer swarms, measured at
/// about 580 bytes each in memory and 510 in Redis, so a full table costs some 0.6 GB.
pub const DEFAULT_MAX_TORRENTS: u64 = 1_000_000;
/// `--max-peers-total` by default: a peer in a larger swarm costs about 130 bytes in memory and
/// 190 in Redis, so the other 4 million peers add some 0.5-0.75 GB: about 1.1-1.3 GB in all.
pub const DEFAULT_MAX_PEERS_TOTAL: u64 = 5_000_000;

/// How much a store holds at most. New swarms and new peers past these are refused; peers already
/// in a swarm keep announcing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Swarms with at least one peer.
    pub torrents: u64,
    /// Peers across every swarm.
    pub peers: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            torrents: DEFAULT_MAX_TORRENTS,
            peers: DEFAULT_MAX_PEERS_TOTAL,
        }
    }
}

/// Which bound refused an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `--max-torrents`.
    Torrents,
    /// `--max-peers-total`.
    Peers,
}

impl Limit {
    /// What the bound counts, as the refusal names it.
    pub fn noun(self) -> &'static str {
        match self {
            Limit::Torrents => "torrents",
            Limit::Peers => "peers",
        }
    }
}

impl Limits {
    /// The error for a refusal by `limit`.
    pub fn refusal(&self, limit: Limit) -> StoreError {
        let max = match limit {
            Limit::Torrents => self.torrents,
            Limit::Peers => self.peers,
        };
        StoreError::Full { limit, max }
    }
}

/// Why the store could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A new swarm or peer past [`Limits`]; existing peers are still served.
    #[error("tracker full: it holds at most {max} {}; try again later", .limit.noun())]
    Full { limit: Limit, max: u64 },
    /// The backend is down or too slow; the caller answers with a failure and retries later.
    #[error("swarm store unavailable: {0}")]
    Unavailable(String),
    /// The backend answered something unexpected.
    #[error("swarm store error: {0}")]
    Backend(String),
}

/// The swarm rules over some storage. Peers not seen for the store's time-to-live expire.
pub trait SwarmStore: Send + Sync + 'static {
    /// Applies an announce and samples peers for the reply.
    fn announce(
        &self,
        a: AnnounceIn,
    ) -> impl Future<Output = Result<AnnounceOut, StoreError>> + Send;
    /// Figures for each hash, in order (zeros for unknown torrents).
    fn scrape(
        &self,
        hashes: &[Id],
        now: u64,
    ) -> impl Future<Output = Result<Vec<Counts>, StoreError>> + Send;
    /// Totals over every torrent.
    fn totals(&self) -> impl Future<Output = Result<Totals, StoreError>> + Send;
    /// Whether the backend answers.
    fn health(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes expired peers (and swarms left empty) that announces have not already removed;
    /// returns how many peers went.
    fn sweep(&self, now: u64) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// `memory`, `redis` or `redis-cluster`.
    fn kind(&self) -> &'static str;
}

/// The store chosen at start-up.
pub enum AnyStore {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl SwarmStore for AnyStore {
    async fn announce(&self, a: AnnounceIn) -> Result<AnnounceOut, StoreError> {
        match self {
            AnyStore::Memory(s) => s.announce(a).await,
            AnyStore::Redis(s) => s.announce(a).await,
        }
    }

    async fn scrape(&self, hashes: &[Id], now: u64) -> Result<Vec<Counts>, StoreError> {
        match self {
            AnyStore::Memory(s) => s.scrape(hashes, now).await,
            AnyStore::Redis(s) => s.scrape(hashes, now).await,
        }
    }

    async fn totals(&self) -> Result<Totals, StoreError> {
        match self {
            AnyStore::Memory(s) => s.totals().await,
            AnyStore::Redis(s) => s.totals().await,
        }
    }

    async fn health(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(s) => s.health().await,
            AnyStore::Redis(s) => s.health().await,
        }
    }

    async fn sweep(&self, now: u64) -> Result<u64, StoreError> {
        match self {
            AnyStore::Memory(s) => s.sweep(now).await,
            AnyStore::Redis(s) => s.sweep(now).await,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            AnyStore::Memory(s) => s.kind(),
            AnyStore::Redis(s) => s.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_which_bound_and_its_value() {
        let l = Limits {
            torrents: 7,
            peers: 9,
        };
        assert_eq!(
            l.refusal(Limit::Torrents).to_string(),
            "tracker full: it holds at most 7 torrents; try again later"
        );
        assert_eq!(
            l.refusal(Limit::Peers).to_string(),
            "tracker full: it holds at most 9 peers; try again later"
        );
    }
}
