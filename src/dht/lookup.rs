//! An iterative lookup (BEP 5, Kademlia): start from the closest nodes we know, ask α = 3 at a
//! time for nodes closer to the target (and, for `get_peers`, for peers and a token), add what they
//! name, and stop when the K closest nodes still standing have all answered and nothing is in
//! flight. Pure: the shell sends the queries this returns and reports answers and timeouts; the
//! caller's clock only decides when a query has timed out.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use super::id::NodeId;
use super::table::K;

/// Queries in flight at once.
pub const ALPHA: usize = 3;
/// Candidates kept (the farthest are dropped beyond this).
pub const MAX_CANDIDATES: usize = 128;
/// Queries one lookup may send in all: a lookup in a hostile or huge DHT still ends.
pub const MAX_QUERIES: usize = 200;
/// Peers one lookup collects.
pub const MAX_PEERS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Fresh,
    Asked,
    /// Asked long ago: no longer holds an α slot nor the end of the lookup, but its answer is
    /// still taken (libtorrent's short timeout).
    Slow,
    Answered(Option<Vec<u8>>),
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    id: NodeId,
    addr: SocketAddr,
    state: State,
}

/// One lookup in progress.
#[derive(Debug)]
pub struct Lookup {
    target: NodeId,
    candidates: BTreeMap<[u8; 20], Candidate>,
    peers: Vec<SocketAddr>,
    seen_peers: HashSet<SocketAddr>,
    in_flight: usize,
    sent: usize,
}

impl Lookup {
    /// A lookup of `target` starting from `seeds` (the table's closest, or bootstrap nodes).
    pub fn new(target: NodeId, seeds: &[(NodeId, SocketAddr)]) -> Lookup {
        let mut l = Lookup {
            target,
            candidates: BTreeMap::new(),
            peers: Vec::new(),
            seen_peers: HashSet::new(),
            in_flight: 0,
            sent: 0,
        };
        l.add_nodes(seeds);
        l
    }

    /// The target.
    pub fn target(&self) -> NodeId {
        self.target
    }

    fn add_nodes(&mut self, nodes: &[(NodeId, SocketAddr)]) {
        for (id, addr) in nodes {
            self.candidates
                .entry(id.distance(&self.target))
                .or_insert(Candidate {
                    id: *id,
                    addr: *addr,
                    state: State::Fresh,
                });
        }
        while self.candidates.len() > MAX_CANDIDATES {
            // Never drop one we are waiting for: its answer would be lost.
            let far = self
                .candidates
                .iter()
                .rev()
                .find(|(_, c)| c.state != State::Asked)
                .map(|(d, _)| *d);
            match far {
                Some(d) => self.candidates.remove(&d),
                None => break,
            };
        }
    }

    /// The nodes to query now (at most α in flight), closest first; each is marked asked.
    pub fn next_queries(&mut self) -> Vec<(NodeId, SocketAddr)> {
        let mut out = Vec::new();
        let mut live = 0;
        for c in self.candidates.values_mut() {
            if self.in_flight >= ALPHA || self.sent >= MAX_QUERIES || live >= K {
                break;
            }
            match c.state {
                State::Failed => continue,
                State::Fresh => {
                    c.state = State::Asked;
                    self.in_flight += 1;
                    self.sent += 1;
                    out.push((c.id, c.addr));
                }
                State::Asked | State::Slow | State::Answered(_) => {}
            }
            live += 1;
        }
        out
    }

    fn candidate(&mut self, id: &NodeId) -> Option<&mut Candidate> {
        self.candidates
            .get_mut(&id.distance(&self.target))
            .filter(|c| c.id == *id)
    }

    /// `id` answered with closer `nodes`, `peers` (get_peers) and a `token`.
    pub fn on_reply(
        &mut self,
        id: &NodeId,
        nodes: &[(NodeId, SocketAddr)],
        peers: &[SocketAddr],
        token: Option<Vec<u8>>,
    ) {
        let Some(c) = self.candidate(id) else {
            return;
        };
        let was = std::mem::replace(&mut c.state, State::Answered(token.clone()));
        match was {
            State::Asked => self.in_flight -= 1,
            State::Slow => {}
            other => {
                c.state = other;
                return;
            }
        }
        for p in peers {
            if self.peers.len() < MAX_PEERS && self.seen_peers.insert(*p) {
                self.peers.push(*p);
            }
        }
        self.add_nodes(nodes);
    }

    /// A query to `id` timed out or got an error.
    pub fn on_failure(&mut self, id: &NodeId) {
        let Some(c) = self.candidate(id) else {
            return;
        };
        match c.state {
            State::Asked => {
                c.state = State::Failed;
                self.in_flight -= 1;
            }
            State::Slow => c.state = State::Failed,
            _ => {}
        }
    }

    /// A query to `id` has waited past the short timeout: its α slot goes to the next node, and
    /// the lookup may end without it; a late answer still counts.
    pub fn on_slow(&mut self, id: &NodeId) {
        let Some(c) = self.candidate(id) else {
            return;
        };
        if c.state == State::Asked {
            c.state = State::Slow;
            self.in_flight -= 1;
        }
    }

    /// Whether the lookup is over: nothing in flight and none of the K closest standing nodes is
    /// left to ask (or the query budget is spent).
    pub fn is_done(&self) -> bool {
        if self.in_flight > 0 {
            return false;
        }
        if self.sent >= MAX_QUERIES {
            return true;
        }
        !self
            .candidates
            .values()
            .filter(|c| c.state != State::Failed)
            .take(K)
            .any(|c| c.state == State::Fresh)
    }

    /// Peers found so far (get_peers), each once.
    pub fn peers(&self) -> &[SocketAddr] {
        &self.peers
    }

    /// The K closest nodes that answered, with their tokens: where to `announce_peer`.
    pub fn closest_answered(&self) -> Vec<(NodeId, SocketAddr, Option<Vec<u8>>)> {
        self.candidates
            .values()
            .filter_map(|c| match &c.state {
                State::Answered(t) => Some((c.id, c.addr, t.clone())),
                _ => None,
            })
            .take(K)
            .collect()
    }

    /// Queries sent so far.
    pub fn sent(&self) -> usize {
        self.sent
    }
}

#[cfg(test)]
mod tests;
