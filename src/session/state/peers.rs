//! Peers: the connected ones (each with its mailbox and the figures its task reports), incoming
//! connections still handshaking, strikes and bans, and per-address tallies for the summary.
//!
//! Slots: [`Peers::slots`] = connected + incoming still handshaking (+ the pool's dials, counted by
//! the caller) never exceeds `--max-peers` when a new one is taken; every claimed incoming slot is
//! settled exactly once (the peer registered or turned away, or its handshake failed).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use super::{Command, PeerEntry, PeerStats};
use crate::picker::PeerKey;
use crate::session::pool::PeerSource;

/// A peer that alone sent this many pieces that failed their hash check is banned for the session.
pub const MAX_STRIKES: u32 = 3;

/// Totals for one peer address over the session.
#[derive(Debug, Clone, Default)]
pub struct PeerTally {
    /// Client name from its peer id.
    pub client: String,
    /// Useful block bytes it sent.
    pub bytes: u64,
    /// Where we heard of it (incoming: it found us).
    pub source: Option<PeerSource>,
}

#[derive(Default)]
pub(super) struct Peers {
    map: HashMap<PeerKey, PeerEntry>,
    next_key: PeerKey,
    accepting: usize,
    strikes: HashMap<SocketAddr, u32>,
    banned: HashMap<SocketAddr, String>,
    banned_ids: HashSet<[u8; 20]>,
    tallies: HashMap<SocketAddr, PeerTally>,
    ever: usize,
}

impl Peers {
    pub(super) fn new() -> Peers {
        Peers {
            next_key: 1,
            ..Peers::default()
        }
    }

    pub(super) fn new_key(&mut self) -> PeerKey {
        let key = self.next_key;
        self.next_key += 1;
        key
    }

    /// Connected peers plus incoming connections still handshaking.
    pub(super) fn slots(&self) -> usize {
        self.map.len() + self.accepting
    }

    pub(super) fn claim_incoming(&mut self) {
        self.accepting += 1;
    }

    pub(super) fn settle_incoming(&mut self) {
        self.accepting = self.accepting.saturating_sub(1);
    }

    pub(super) fn insert(&mut self, entry: PeerEntry) -> PeerKey {
        let key = self.new_key();
        self.map.insert(key, entry);
        self.ever += 1;
        key
    }

    pub(super) fn remove(&mut self, key: PeerKey) {
        self.map.remove(&key);
    }

    pub(super) fn get(&self, key: PeerKey) -> Option<&PeerEntry> {
        self.map.get(&key)
    }

    pub(super) fn get_mut(&mut self, key: PeerKey) -> Option<&mut PeerEntry> {
        self.map.get_mut(&key)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&PeerKey, &PeerEntry)> {
        self.map.iter()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&PeerKey, &mut PeerEntry)> {
        self.map.iter_mut()
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Peers ever registered this session.
    pub(super) fn ever(&self) -> usize {
        self.ever
    }

    pub(super) fn has_id(&self, id: &[u8; 20]) -> bool {
        self.map.values().any(|p| &p.id == id)
    }

    pub(super) fn tally(&mut self, addr: SocketAddr) -> &mut PeerTally {
        self.tallies.entry(addr).or_default()
    }

    pub(super) fn tallies(&self) -> &HashMap<SocketAddr, PeerTally> {
        &self.tallies
    }

    pub(super) fn is_banned(&self, addr: &SocketAddr, id: Option<&[u8; 20]>) -> bool {
        self.banned.contains_key(addr) || id.is_some_and(|id| self.banned_ids.contains(id))
    }

    pub(super) fn banned(&self) -> &HashMap<SocketAddr, String> {
        &self.banned
    }

    pub(super) fn strikes(&self, addr: &SocketAddr) -> u32 {
        self.strikes.get(addr).copied().unwrap_or(0)
    }

    /// A strike against `addr` for a bad piece it alone sent; `true` when this one bans it (and
    /// every connection from it, by address and by peer id, is told to go).
    pub(super) fn strike(&mut self, addr: SocketAddr) -> bool {
        let n = self.strikes.entry(addr).or_default();
        *n += 1;
        let n = *n;
        if n < MAX_STRIKES || self.banned.contains_key(&addr) {
            return false;
        }
        self.banned
            .insert(addr, format!("sent {n} pieces that failed the hash check"));
        for p in self.map.values().filter(|p| p.addr == addr) {
            self.banned_ids.insert(p.id);
            let _ =
                p.tx.send(Command::Disconnect("banned: took part in bad pieces"));
        }
        true
    }

    pub(super) fn set_stats(&mut self, key: PeerKey, stats: PeerStats, seed: bool) {
        if let Some(e) = self.map.get_mut(&key) {
            e.stats = stats;
            e.seed = seed;
        }
    }
}
