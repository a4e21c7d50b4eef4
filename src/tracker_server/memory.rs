//! The in-memory store (the default): swarms in 64 shards, each behind its own mutex, picked by the
//! info-hash's first byte, so announces to different torrents rarely wait for each other and no lock
//! is held across an await. Expired peers are swept shard by shard. Swarms and peers are counted in
//! two atomics, so [`Limits`] hold exactly across shards: a new swarm or peer takes its place in the
//! count before it is added, and is refused when there is none.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::store::{
    AnnounceIn, AnnounceOut, Counts, Event, Id, Limit, Limits, StoreError, SwarmStore, Totals,
};
use super::swarm::Swarm;

const SHARDS: usize = 64;

/// Swarms in memory; peers expire `ttl` seconds after their last announce.
pub struct MemoryStore {
    shards: Vec<Mutex<HashMap<Id, Swarm>>>,
    ttl: u64,
    limits: Limits,
    /// Swarms held (changed only under the swarm's shard lock).
    torrents: AtomicU64,
    /// Peers held (changed only under the peer's shard lock).
    peers: AtomicU64,
}

/// Takes one place in `count` if it is below `max`.
fn reserve(count: &AtomicU64, max: u64) -> bool {
    count
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

impl MemoryStore {
    /// An empty store holding at most `limits`.
    pub fn new(ttl: u64, limits: Limits) -> MemoryStore {
        MemoryStore {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            ttl,
            limits,
            torrents: AtomicU64::new(0),
            peers: AtomicU64::new(0),
        }
    }

    /// Takes the places a new swarm and/or a new peer need, or none and says which bound refused.
    fn admit(&self, new_swarm: bool, new_peer: bool) -> Result<(), StoreError> {
        if new_swarm && !reserve(&self.torrents, self.limits.torrents) {
            return Err(self.limits.refusal(Limit::Torrents));
        }
        if new_peer && !reserve(&self.peers, self.limits.peers) {
            if new_swarm {
                self.torrents.fetch_sub(1, Ordering::AcqRel);
            }
            return Err(self.limits.refusal(Limit::Peers));
        }
        Ok(())
    }

    fn shard(&self, hash: &Id) -> MutexGuard<'_, HashMap<Id, Swarm>> {
        // A panic while holding a shard cannot leave a swarm half-updated in a way that matters
        // more than losing the tracker: carry on with the data.
        self.shards[usize::from(hash.0[0]) % SHARDS]
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
        let known = shard.get(&a.info_hash);
        let new_swarm = known.is_none();
        let new_peer = a.event != Event::Stopped && known.is_none_or(|s| !s.contains(&a.peer.id));
        self.admit(new_swarm, new_peer)?;
        let swarm = shard.entry(a.info_hash).or_default();
        let before = swarm.len();
        swarm.announce(a.peer, a.event, a.now);
        // A new peer's place is already taken; a stopped one gives its place back.
        let left = before.saturating_sub(swarm.len()) as u64;
        self.peers.fetch_sub(left, Ordering::AcqRel);
        let out = AnnounceOut {
            counts: counts(swarm),
            peers: swarm.sample(a.numwant, &a.peer.id, &mut rand::rng()),
        };
        if swarm.is_empty() {
            shard.remove(&a.info_hash);
            self.torrents.fetch_sub(1, Ordering::AcqRel);
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
            let (mut g, mut e) = (0, 0);
            shard.retain(|_, s| {
                g += s.expire(cutoff) as u64;
                e += u64::from(s.is_empty());
                !s.is_empty()
            });
            self.peers.fetch_sub(g, Ordering::AcqRel);
            self.torrents.fetch_sub(e, Ordering::AcqRel);
            gone += g;
        }
        Ok(gone)
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
