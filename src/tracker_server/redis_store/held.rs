//! What each bucket of the Redis store held when last read, and the sums: the announce script
//! checks the bounds against its own bucket (exact, read in the script) plus the other buckets as
//! last seen here (exact on a single Redis, where there is no other bucket).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Torrents and peers per bucket, and their sums.
pub struct Held {
    torrents: Vec<AtomicU64>,
    peers: Vec<AtomicU64>,
    /// Per bucket, how many times an announce set it (a read started before one is stale).
    generation: Vec<AtomicU64>,
    sum_torrents: AtomicU64,
    sum_peers: AtomicU64,
}

impl Held {
    /// `buckets` buckets, all empty.
    pub fn new(buckets: usize) -> Held {
        Held {
            torrents: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
            peers: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
            generation: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
            sum_torrents: AtomicU64::new(0),
            sum_peers: AtomicU64::new(0),
        }
    }

    /// An announce saw bucket `b` hold `torrents` and `peers` (ignored past the last bucket).
    pub fn set(&self, b: usize, torrents: u64, peers: u64) {
        if let Some(g) = self.generation.get(b) {
            g.fetch_add(1, Relaxed);
        }
        self.store(b, torrents, peers);
    }

    /// Bucket `b`'s generation, taken before reading it.
    pub fn generation(&self, b: usize) -> u64 {
        self.generation.get(b).map_or(0, |g| g.load(Relaxed))
    }

    /// A read of bucket `b` that started at generation `g`: kept unless an announce set the
    /// bucket since (its figures are newer).
    pub fn set_read(&self, b: usize, g: u64, torrents: u64, peers: u64) {
        if self.generation(b) == g {
            self.store(b, torrents, peers);
        }
    }

    fn store(&self, b: usize, torrents: u64, peers: u64) {
        let (Some(t), Some(p)) = (self.torrents.get(b), self.peers.get(b)) else {
            return;
        };
        // The sums move by the difference (wrapping: a drop is a negative difference).
        let old = t.swap(torrents, Relaxed);
        self.sum_torrents
            .fetch_add(torrents.wrapping_sub(old), Relaxed);
        let old = p.swap(peers, Relaxed);
        self.sum_peers.fetch_add(peers.wrapping_sub(old), Relaxed);
    }

    /// Whether bucket `b` held a torrent when last read.
    pub fn holds_torrents(&self, b: usize) -> bool {
        self.torrents.get(b).is_some_and(|t| t.load(Relaxed) > 0)
    }

    /// Torrents and peers in every bucket but `b`.
    pub fn elsewhere(&self, b: usize) -> (u64, u64) {
        let mine = |v: &[AtomicU64]| v.get(b).map_or(0, |x| x.load(Relaxed));
        (
            self.sum_torrents
                .load(Relaxed)
                .saturating_sub(mine(&self.torrents)),
            self.sum_peers
                .load(Relaxed)
                .saturating_sub(mine(&self.peers)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_follow_every_bucket_but_the_asker() {
        let h = Held::new(3);
        h.set(0, 2, 5);
        h.set(1, 1, 1);
        assert_eq!(h.elsewhere(2), (3, 6));
        assert_eq!(h.elsewhere(0), (1, 1));
        h.set(0, 0, 0);
        assert_eq!(h.elsewhere(2), (1, 1));
        h.set(7, 9, 9);
        assert_eq!(h.elsewhere(7), (1, 1));
        // A read that started before an announce's figures is dropped; a later one is kept.
        let g = h.generation(1);
        h.set(1, 3, 3);
        h.set_read(1, g, 1, 1);
        assert_eq!(h.elsewhere(2), (3, 3));
        h.set_read(1, h.generation(1), 2, 2);
        assert_eq!(h.elsewhere(2), (2, 2));
        assert!(h.holds_torrents(1) && !h.holds_torrents(2));
        let one = Held::new(1);
        one.set(0, 4, 4);
        assert_eq!(one.elsewhere(0), (0, 0));
    }
}
