//! Where swarms live: the [`SwarmStore`] trait, its in-memory ([`super::memory`]) and Redis
//! ([`super::redis_store`]) implementations behind [`AnyStore`], and the types they exchange. Every
//! method takes the time as a number (seconds), so tests drive the clock.

use std::future::Future;

use super::memory::MemoryStore;
use super::query::{Event, Id};
use super::redis_store::RedisStore;
use super::swarm::Peer;

/// A torrent's figures (scrape and announce replies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Seeders.
    pub complete: u64,
    /// Leechers.
    pub incomplete: u64,
    /// `completed` events counted while the swarm has had peers.
    pub downloaded: u64,
}

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

/// Why the store could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
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
    /// `memory` or `redis`.
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
