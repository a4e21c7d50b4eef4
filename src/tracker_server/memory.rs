//! The in-memory store (the default): swarms in 64 shards, each behind its own mutex, picked by the
//! info-hash's first byte, so announces to different torrents rarely wait for each other and no lock
//! is held across an await. Expired peers are swept shard by shard.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::query::{Event, Id};
use super::store::{AnnounceIn, AnnounceOut, Counts, StoreError, SwarmStore, Totals};
use super::swarm::Swarm;

const SHARDS: usize = 64;

/// Swarms in memory; peers expire `ttl` seconds after their last announce.
pub struct MemoryStore {
    shards: Vec<Mutex<HashMap<Id, Swarm>>>,
    ttl: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new(ttl: u64) -> MemoryStore {
        MemoryStore {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            ttl,
        }
    }

    fn shard(&self, hash: &Id) -> MutexGuard<'_, HashMap<Id, Swarm>> {
        // A panic while holding a shard cannot leave a swarm half-updated in a way that matters
        // more than losing the tracker: carry on with the data.
        self.shards[usize::from(hash[0]) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

fn counts(s: &Swarm) -> Counts {
    Counts {
        complete: s.complete() as u64,
        incomplete: s.incomplete() as u64,
        downloaded: s.downloaded,
    }
}

impl SwarmStore for MemoryStore {
    async fn announce(&self, a: AnnounceIn) -> Result<AnnounceOut, StoreError> {
        let mut shard = self.shard(&a.info_hash);
        if a.event == Event::Stopped && !shard.contains_key(&a.info_hash) {
            return Ok(AnnounceOut::default());
        }
        let swarm = shard.entry(a.info_hash).or_default();
        swarm.announce(a.peer, a.event, a.now);
        let out = AnnounceOut {
            counts: counts(swarm),
            peers: swarm.sample(a.numwant, &a.peer.id, &mut rand::rng()),
        };
        if swarm.is_empty() {
            shard.remove(&a.info_hash);
        }
        Ok(out)
    }

    async fn scrape(&self, hashes: &[Id], _now: u64) -> Result<Vec<Counts>, StoreError> {
        Ok(hashes
            .iter()
            .map(|h| self.shard(h).get(h).map(counts).unwrap_or_default())
            .collect())
    }

    async fn totals(&self) -> Result<Totals, StoreError> {
        let mut t = Totals::default();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for s in shard.values() {
                t.torrents += 1;
                t.seeders += s.complete() as u64;
                t.leechers += s.incomplete() as u64;
                t.completed += s.downloaded;
            }
        }
        Ok(t)
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn sweep(&self, now: u64) -> Result<u64, StoreError> {
        let cutoff = now.saturating_sub(self.ttl);
        let mut gone = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.retain(|_, s| {
                gone += s.expire(cutoff) as u64;
                !s.is_empty()
            });
        }
        Ok(gone)
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
