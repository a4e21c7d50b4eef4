//! The routing table (BEP 5): k-buckets of K = 8 nodes by XOR distance from our id, the bucket
//! holding our own id split as it fills. Nodes that answered us are good; one that fails three
//! times in a row is replaced by the newest node of its bucket's replacement cache. Buckets
//! untouched for 15 minutes are due for a refresh lookup. Pure: the caller passes the clock.
//!
//! Address rules (`Policy`): unless local nodes are allowed (a local `--dht-bootstrap`), loopback,
//! private and unspecified addresses are refused and one IP has at most one node, as libtorrent's
//! `dht_restrict_routing_ips` does; with them allowed, many nodes may share an IP on other ports.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::id::NodeId;

/// Nodes per bucket.
pub const K: usize = 8;
/// Failures in a row after which a node is replaced.
pub const MAX_FAILS: u32 = 3;
/// A bucket not changed for this long is refreshed; a node not heard from for this long is
/// questionable.
pub const REFRESH: Duration = Duration::from_secs(15 * 60);

/// A node in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its id.
    pub id: NodeId,
    /// Where it answers.
    pub addr: SocketAddr,
    /// Last time it answered (or queried us).
    pub last_seen: Instant,
    /// Failures in a row.
    pub fails: u32,
    /// It has answered one of our queries.
    pub verified: bool,
}

#[derive(Debug)]
struct Bucket {
    nodes: Vec<Entry>,
    replacements: VecDeque<Entry>,
    changed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            nodes: Vec::with_capacity(K),
            replacements: VecDeque::new(),
            changed: now,
        }
    }
}

/// Which node addresses the table takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Accept loopback and private addresses, and several nodes per IP.
    pub allow_local: bool,
}

impl Policy {
    /// Whether `addr` may be a node (or a peer given to us) at all.
    pub fn accepts(&self, addr: &SocketAddr) -> bool {
        if addr.port() == 0 || addr.ip().is_unspecified() || addr.ip().is_multicast() {
            return false;
        }
        self.allow_local || !is_local(&addr.ip())
    }
}

/// Loopback, private (RFC 1918, unique local), link-local or documentation-only addresses.
pub fn is_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// What [`Table::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A new node in a bucket.
    Added,
    /// A node already there, refreshed.
    Updated,
    /// The bucket is full of good nodes: kept as a replacement.
    Cached,
    /// Refused (our own id, a bad address, another node's IP, or an id that moved address).
    Refused,
}

/// The routing table of one address family.
#[derive(Debug)]
pub struct Table {
    own: NodeId,
    policy: Policy,
    buckets: Vec<Bucket>,
}

impl Table {
    /// An empty table around our id.
    pub fn new(own: NodeId, policy: Policy, now: Instant) -> Table {
        Table {
            own,
            policy,
            buckets: vec![Bucket::new(now)],
        }
    }

    /// Our id.
    pub fn own(&self) -> NodeId {
        self.own
    }

    /// Nodes in buckets.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    /// No node at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn index(&self, id: &NodeId) -> usize {
        (self.own.common_prefix(id) as usize).min(self.buckets.len() - 1)
    }

    fn find(&self, id: &NodeId) -> Option<(usize, usize)> {
        let b = self.index(id);
        self.buckets[b]
            .nodes
            .iter()
            .position(|e| e.id == *id)
            .map(|i| (b, i))
    }

    fn ip_taken(&self, ip: &IpAddr, except: &NodeId) -> bool {
        self.buckets
            .iter()
            .flat_map(|b| &b.nodes)
            .any(|e| e.addr.ip() == *ip && e.id != *except)
    }

    /// A node heard from: `verified` when it answered our query (else it queried us).
    pub fn insert(
        &mut self,
        id: NodeId,
        addr: SocketAddr,
        verified: bool,
        now: Instant,
    ) -> Inserted {
        if id == self.own || !self.policy.accepts(&addr) {
            return Inserted::Refused;
        }
        if let Some((b, i)) = self.find(&id) {
            let e = &mut self.buckets[b].nodes[i];
            if e.addr != addr {
                return Inserted::Refused;
            }
            e.last_seen = now;
            e.fails = 0;
            e.verified |= verified;
            self.buckets[b].changed = now;
            return Inserted::Updated;
        }
        if !self.policy.allow_local && self.ip_taken(&addr.ip(), &id) {
            return Inserted::Refused;
        }
        let entry = Entry {
            id,
            addr,
            last_seen: now,
            fails: 0,
            verified,
        };
        loop {
            let b = self.index(&id);
            let last = b == self.buckets.len() - 1;
            let bucket = &mut self.buckets[b];
            if bucket.nodes.len() < K {
                bucket.nodes.push(entry);
                bucket.changed = now;
                return Inserted::Added;
            }
            if let Some(bad) = bucket.nodes.iter().position(|e| e.fails >= MAX_FAILS) {
                bucket.nodes[bad] = entry;
                bucket.changed = now;
                return Inserted::Added;
            }
            if last && self.buckets.len() < 160 {
                self.split(now);
                continue;
            }
            let bucket = &mut self.buckets[b];
            bucket.replacements.retain(|e| e.id != id);
            if bucket.replacements.len() >= K {
                bucket.replacements.pop_front();
            }
            bucket.replacements.push_back(entry);
            return Inserted::Cached;
        }
    }

    /// Splits the last bucket: nodes one bit closer to us move to a new last bucket.
    fn split(&mut self, now: Instant) {
        let depth = self.buckets.len();
        let own = self.own;
        let last = self
            .buckets
            .last_mut()
            .map(|b| std::mem::take(&mut b.nodes));
        let mut new = Bucket::new(now);
        let mut keep = Vec::new();
        for e in last.unwrap_or_default() {
            if own.common_prefix(&e.id) as usize >= depth {
                new.nodes.push(e);
            } else {
                keep.push(e);
            }
        }
        if let Some(b) = self.buckets.last_mut() {
            b.nodes = keep;
        }
        self.buckets.push(new);
    }

    /// A query to `id` got no answer: after [`MAX_FAILS`] in a row it is replaced by the newest
    /// replacement of its bucket, if any (else it stays, marked bad, until one comes).
    pub fn failed(&mut self, id: &NodeId) {
        let Some((b, i)) = self.find(id) else {
            return;
        };
        let bucket = &mut self.buckets[b];
        bucket.nodes[i].fails += 1;
        if bucket.nodes[i].fails >= MAX_FAILS {
            if let Some(r) = bucket.replacements.pop_back() {
                bucket.nodes[i] = r;
            }
        }
    }

    /// Up to `n` nodes closest to `target`, good ones only (fewer than [`MAX_FAILS`] failures).
    pub fn closest(&self, target: &NodeId, n: usize) -> Vec<(NodeId, SocketAddr)> {
        let mut all: Vec<&Entry> = self
            .buckets
            .iter()
            .flat_map(|b| &b.nodes)
            .filter(|e| e.fails < MAX_FAILS)
            .collect();
        all.sort_by_key(|e| e.id.distance(target));
        all.into_iter().take(n).map(|e| (e.id, e.addr)).collect()
    }

    /// Targets to look up for buckets not changed for [`REFRESH`].
    pub fn refresh_targets(&mut self, now: Instant, rng: &mut impl rand::Rng) -> Vec<NodeId> {
        let mut out = Vec::new();
        for (depth, b) in self.buckets.iter_mut().enumerate() {
            if now.saturating_duration_since(b.changed) >= REFRESH {
                b.changed = now;
                out.push(self.own.with_prefix(depth as u32, rng));
            }
        }
        out
    }

    /// Nodes not heard from for [`REFRESH`] (to ping), at most `n`.
    pub fn questionable(&self, now: Instant, n: usize) -> Vec<(NodeId, SocketAddr)> {
        self.buckets
            .iter()
            .flat_map(|b| &b.nodes)
            .filter(|e| now.saturating_duration_since(e.last_seen) >= REFRESH)
            .take(n)
            .map(|e| (e.id, e.addr))
            .collect()
    }

    /// Every node (for saving the table).
    pub fn nodes(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| &b.nodes)
    }

    /// Buckets (for tests and the status line).
    pub fn depth(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests;
