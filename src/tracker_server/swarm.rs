//! One swarm's rules (pure; the clock is a number passed in): who is in it, seeders and leechers,
//! completed downloads, events, expiry, and a random sample of peers that never includes the asker.
//! The memory store keeps one [`Swarm`] per info-hash; the Redis store's Lua script follows the same
//! rules, and one test suite holds both to them.

use std::collections::HashMap;
use std::net::SocketAddr;

use rand::Rng;

use crate::tracker::proto::Event;
use crate::types::PeerId;

/// A peer as the tracker hands it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub id: PeerId,
    pub addr: SocketAddr,
    /// `left == 0`.
    pub seeder: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    peer: Peer,
    /// Last announce, seconds.
    seen: u64,
}

/// The peers of one torrent, indexed by peer id (a re-announce from a new address or port replaces
/// the old entry).
#[derive(Debug, Default, Clone)]
pub struct Swarm {
    peers: Vec<Entry>,
    index: HashMap<PeerId, usize>,
    seeders: usize,
    /// `completed` events counted (BEP 48's `downloaded`).
    pub downloaded: u64,
}

impl Swarm {
    /// Applies one announce at time `now`.
    pub fn announce(&mut self, peer: Peer, event: Event, now: u64) {
        if event == Event::Stopped {
            self.remove(&peer.id);
            return;
        }
        match self.index.get(&peer.id) {
            Some(&i) => {
                let was_seeder = self.peers[i].peer.seeder;
                if event == Event::Completed && !was_seeder {
                    self.downloaded += 1;
                }
                match (was_seeder, peer.seeder) {
                    (false, true) => self.seeders += 1,
                    (true, false) => self.seeders -= 1,
                    _ => {}
                }
                self.peers[i] = Entry { peer, seen: now };
            }
            None => {
                if event == Event::Completed {
                    self.downloaded += 1;
                }
                if peer.seeder {
                    self.seeders += 1;
                }
                self.index.insert(peer.id, self.peers.len());
                self.peers.push(Entry { peer, seen: now });
            }
        }
    }

    fn remove(&mut self, id: &PeerId) {
        let Some(i) = self.index.remove(id) else {
            return;
        };
        let gone = self.peers.swap_remove(i);
        if gone.peer.seeder {
            self.seeders -= 1;
        }
        if let Some(moved) = self.peers.get(i) {
            self.index.insert(moved.peer.id, i);
        }
    }

    /// Drops peers last seen before `cutoff`; returns how many went.
    pub fn expire(&mut self, cutoff: u64) -> usize {
        let stale: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|e| e.seen < cutoff)
            .map(|e| e.peer.id)
            .collect();
        for id in &stale {
            self.remove(id);
        }
        stale.len()
    }

    /// Up to `n` distinct peers chosen at random, never `asker`.
    pub fn sample(&self, n: usize, asker: &PeerId, rng: &mut impl Rng) -> Vec<Peer> {
        let take = (n + 1).min(self.peers.len());
        rand::seq::index::sample(rng, self.peers.len(), take)
            .into_iter()
            .map(|i| self.peers[i].peer)
            .filter(|p| &p.id != asker)
            .take(n)
            .collect()
    }

    /// Seeders.
    pub fn complete(&self) -> usize {
        self.seeders
    }

    /// Leechers.
    pub fn incomplete(&self) -> usize {
        self.peers.len() - self.seeders
    }

    /// Whether peer `id` is in the swarm.
    pub fn contains(&self, id: &PeerId) -> bool {
        self.index.contains_key(id)
    }

    /// Peers, seeders and leechers together.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// No peer left (the counters of completed downloads may still matter).
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8, seeder: bool) -> Peer {
        Peer {
            id: PeerId([n; 20]),
            addr: SocketAddr::from(([10, 0, 0, n], 6881)),
            seeder,
        }
    }

    fn rng() -> rand::rngs::StdRng {
        rand::SeedableRng::seed_from_u64(7)
    }

    #[test]
    fn counts_follow_events() {
        let mut s = Swarm::default();
        s.announce(peer(1, false), Event::Started, 0);
        s.announce(peer(2, true), Event::Started, 0);
        assert_eq!((s.complete(), s.incomplete(), s.downloaded), (1, 1, 0));
        assert!(
            s.contains(&PeerId([1; 20]))
                && s.contains(&PeerId([2; 20]))
                && !s.contains(&PeerId([3; 20]))
        );
        assert_eq!(s.len(), 2);
        s.announce(peer(1, true), Event::Completed, 5);
        assert_eq!((s.complete(), s.incomplete(), s.downloaded), (2, 0, 1));
        // A repeated `completed` from a seeder is not another download.
        s.announce(peer(1, true), Event::Completed, 6);
        assert_eq!(s.downloaded, 1);
        s.announce(peer(2, true), Event::Stopped, 7);
        assert_eq!((s.complete(), s.incomplete()), (1, 0));
        assert!(!s.contains(&PeerId([2; 20])));
        assert_eq!(s.len(), 1);
        s.announce(peer(1, true), Event::Stopped, 8);
        assert!(s.is_empty());
        // Stopping an unknown peer changes nothing.
        s.announce(peer(9, false), Event::Stopped, 9);
        assert!(s.is_empty());
    }

    #[test]
    fn a_seeder_turning_leecher_is_recounted() {
        let mut s = Swarm::default();
        s.announce(peer(1, true), Event::Started, 0);
        s.announce(peer(1, false), Event::None, 1);
        assert_eq!((s.complete(), s.incomplete()), (0, 1));
    }

    #[test]
    fn new_address_replaces_the_entry() {
        let mut s = Swarm::default();
        s.announce(peer(1, false), Event::Started, 0);
        let mut moved = peer(1, false);
        moved.addr = SocketAddr::from(([10, 9, 9, 9], 7000));
        s.announce(moved, Event::None, 1);
        assert_eq!(s.incomplete(), 1);
        assert_eq!(s.sample(10, &PeerId([0; 20]), &mut rng()), vec![moved]);
    }

    #[test]
    fn expiry_drops_only_stale_peers_and_fixes_counts() {
        let mut s = Swarm::default();
        s.announce(peer(1, true), Event::Started, 100);
        s.announce(peer(2, false), Event::Started, 100);
        s.announce(peer(3, false), Event::Started, 300);
        assert_eq!(s.expire(200), 2);
        assert_eq!((s.complete(), s.incomplete()), (0, 1));
        assert_eq!(
            s.sample(10, &PeerId([0; 20]), &mut rng()),
            vec![peer(3, false)]
        );
        // A peer that re-announced is fresh again.
        s.announce(peer(3, false), Event::None, 500);
        assert_eq!(s.expire(400), 0);
    }

    #[test]
    fn sample_is_bounded_distinct_and_excludes_the_asker() {
        let mut s = Swarm::default();
        for n in 1..=30 {
            s.announce(peer(n, n % 2 == 0), Event::Started, 0);
        }
        let mut r = rng();
        for want in [0, 1, 5, 29, 30, 100] {
            let got = s.sample(want, &PeerId([3; 20]), &mut r);
            assert_eq!(got.len(), want.min(29), "numwant {want}");
            assert!(got.iter().all(|p| p.id != PeerId([3; 20])));
            let mut ids: Vec<PeerId> = got.iter().map(|p| p.id).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), got.len());
        }
        // Random: two samples of 5 out of 29 differ (fixed seed, so this cannot flake).
        assert_ne!(
            s.sample(5, &PeerId([3; 20]), &mut r),
            s.sample(5, &PeerId([3; 20]), &mut r)
        );
        // Alone in the swarm: nobody to return.
        let mut alone = Swarm::default();
        alone.announce(peer(1, false), Event::Started, 0);
        assert!(alone.sample(50, &PeerId([1; 20]), &mut r).is_empty());
    }
}
