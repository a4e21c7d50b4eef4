//! Peers announced to us (`announce_peer`), kept for 30 minutes as BEP 5 suggests, bounded in
//! info-hashes and in peers per info-hash: a flood of announces evicts the oldest, never grows
//! memory. Pure: the caller passes the clock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::id::NodeId;

/// How long an announced peer is kept.
pub const TTL: Duration = Duration::from_secs(30 * 60);
/// Info-hashes kept.
pub const MAX_HASHES: usize = 2000;
/// Peers kept per info-hash.
pub const MAX_PEERS: usize = 100;
/// Peers given in one reply (about 600 bytes of `values`, well inside a datagram).
pub const REPLY_PEERS: usize = 50;

/// The peer store.
#[derive(Debug, Default)]
pub struct Store {
    swarms: HashMap<NodeId, Swarm>,
}

#[derive(Debug, Default)]
struct Swarm {
    peers: Vec<(SocketAddr, Instant)>,
    updated: Option<Instant>,
}

impl Store {
    /// Records `peer` for `info_hash`.
    pub fn announce(&mut self, info_hash: NodeId, peer: SocketAddr, now: Instant) {
        if !self.swarms.contains_key(&info_hash) && self.swarms.len() >= MAX_HASHES {
            self.expire(now);
            if self.swarms.len() >= MAX_HASHES {
                // Evict the swarm whose newest peer is oldest.
                let oldest = self
                    .swarms
                    .iter()
                    .min_by_key(|(_, v)| v.updated)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.swarms.remove(&k);
                }
            }
        }
        let swarm = self.swarms.entry(info_hash).or_default();
        swarm.updated = Some(now);
        let peers = &mut swarm.peers;
        if let Some(p) = peers.iter_mut().find(|p| p.0 == peer) {
            p.1 = now;
            return;
        }
        if peers.len() >= MAX_PEERS {
            if let Some(i) = (0..peers.len()).min_by_key(|&i| peers[i].1) {
                peers.swap_remove(i);
            }
        }
        peers.push((peer, now));
    }

    /// Up to [`REPLY_PEERS`] live peers of `info_hash`, newest first.
    pub fn peers(&self, info_hash: &NodeId, now: Instant) -> Vec<SocketAddr> {
        let Some(peers) = self.swarms.get(info_hash) else {
            return Vec::new();
        };
        let mut live: Vec<&(SocketAddr, Instant)> = peers
            .peers
            .iter()
            .filter(|p| now.saturating_duration_since(p.1) < TTL)
            .collect();
        live.sort_by_key(|p| std::cmp::Reverse(p.1));
        live.into_iter().take(REPLY_PEERS).map(|p| p.0).collect()
    }

    /// Drops peers older than [`TTL`] and empty swarms.
    pub fn expire(&mut self, now: Instant) {
        self.swarms.retain(|_, swarm| {
            swarm
                .peers
                .retain(|p| now.saturating_duration_since(p.1) < TTL);
            !swarm.peers.is_empty()
        });
    }

    /// Info-hashes held.
    pub fn len(&self) -> usize {
        self.swarms.len()
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.swarms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u32) -> SocketAddr {
        SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881))
    }

    #[test]
    fn announced_peers_are_returned_newest_first_and_expire() {
        let now = Instant::now();
        let mut s = Store::default();
        let h = NodeId([1; 20]);
        s.announce(h, peer(1), now);
        s.announce(h, peer(2), now + Duration::from_secs(1));
        s.announce(h, peer(1), now + Duration::from_secs(2));
        assert_eq!(
            s.peers(&h, now + Duration::from_secs(3)),
            vec![peer(1), peer(2)]
        );
        assert!(s.peers(&NodeId([2; 20]), now).is_empty());
        let later = now + Duration::from_secs(1) + TTL;
        assert_eq!(s.peers(&h, later), vec![peer(1)], "peer 2 expired");
        s.expire(now + Duration::from_secs(3) + TTL);
        assert!(s.is_empty());
    }

    #[test]
    fn a_flood_of_announces_stays_bounded() {
        let now = Instant::now();
        let mut s = Store::default();
        for i in 0..(MAX_PEERS as u32 * 3) {
            s.announce(
                NodeId([7; 20]),
                peer(i),
                now + Duration::from_millis(u64::from(i)),
            );
        }
        let got = s.peers(&NodeId([7; 20]), now + Duration::from_secs(60));
        assert_eq!(got.len(), REPLY_PEERS);
        assert_eq!(got[0], peer(MAX_PEERS as u32 * 3 - 1), "the newest kept");
        for i in 0..(MAX_HASHES as u32 + 50) {
            let mut id = [0u8; 20];
            id[..4].copy_from_slice(&i.to_be_bytes());
            s.announce(
                NodeId(id),
                peer(i),
                now + Duration::from_millis(u64::from(i)),
            );
        }
        assert_eq!(s.len(), MAX_HASHES);
    }
}
