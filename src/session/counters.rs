//! A torrent's byte counters, kept outside its lock: peer tasks and web seeds add to them, and the
//! progress display, the announcers and the seeding limit read them, without taking the torrent's
//! mutex. Relaxed atomics: each counter is a total on its own; no reader needs two of them to agree.

use std::sync::atomic::{AtomicU64, Ordering};

/// Byte totals of one run.
#[derive(Debug, Default)]
pub struct Counters {
    fetched: AtomicU64,
    wasted: AtomicU64,
    verified: AtomicU64,
    uploaded: AtomicU64,
    from_web: AtomicU64,
    from_peers: AtomicU64,
}

/// The counters read at one moment, for display and the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Block payload bytes received (useful or not).
    pub fetched: u64,
    /// Bytes received that we already had, could not use, or that failed their piece's check.
    pub wasted: u64,
    /// Bytes of pieces verified this run (the tracker's `downloaded`).
    pub verified: u64,
    /// Block payload bytes uploaded.
    pub uploaded: u64,
    /// Useful bytes from web seeds (counted once their piece is verified).
    pub from_web: u64,
    /// Useful bytes from peers (counted once their piece is verified).
    pub from_peers: u64,
}

impl Counters {
    /// Block bytes received.
    pub fn fetched(&self, n: u64) {
        self.fetched.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes received in vain.
    pub fn wasted(&self, n: u64) {
        self.wasted.fetch_add(n, Ordering::Relaxed);
    }

    /// A piece of `n` bytes verified.
    pub fn verified(&self, n: u64) {
        self.verified.fetch_add(n, Ordering::Relaxed);
    }

    /// Block bytes sent.
    pub fn uploaded(&self, n: u64) {
        self.uploaded.fetch_add(n, Ordering::Relaxed);
    }

    /// Useful bytes from a web seed.
    pub fn from_web(&self, n: u64) {
        self.from_web.fetch_add(n, Ordering::Relaxed);
    }

    /// Useful bytes from a peer.
    pub fn from_peers(&self, n: u64) {
        self.from_peers.fetch_add(n, Ordering::Relaxed);
    }

    /// Every counter now.
    pub fn totals(&self) -> Totals {
        Totals {
            fetched: self.fetched.load(Ordering::Relaxed),
            wasted: self.wasted.load(Ordering::Relaxed),
            verified: self.verified.load(Ordering::Relaxed),
            uploaded: self.uploaded.load(Ordering::Relaxed),
            from_web: self.from_web.load(Ordering::Relaxed),
            from_peers: self.from_peers.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_adds_up_on_its_own() {
        let c = Counters::default();
        c.fetched(10);
        c.fetched(5);
        c.wasted(3);
        c.verified(7);
        c.uploaded(2);
        c.from_web(4);
        c.from_peers(6);
        let t = c.totals();
        assert_eq!(
            t,
            Totals {
                fetched: 15,
                wasted: 3,
                verified: 7,
                uploaded: 2,
                from_web: 4,
                from_peers: 6,
            }
        );
    }

    #[test]
    fn counters_are_shared_across_threads() {
        let c = std::sync::Arc::new(Counters::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.uploaded(1)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(c.totals().uploaded, 4000);
    }
}
