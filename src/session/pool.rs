//! Known peer addresses, where each came from, and when to dial them: new ones first, failed ones
//! retried with exponential backoff and then forgotten, permanent failures (ourselves, bans) never
//! again. Pure: the caller passes the clock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Most addresses remembered: trackers may return 1,000 at a time and we keep at most a few dozen
/// connections, so more would only cost memory.
pub const MAX_KNOWN: usize = 2000;
/// First retry delay after a failure; doubled each time.
pub const RETRY_BASE: Duration = Duration::from_secs(10);
/// Longest retry delay.
pub const RETRY_MAX: Duration = Duration::from_secs(600);
/// Failures in a row after which an address is forgotten.
pub const MAX_FAILS: u32 = 6;

/// Where a peer address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerSource {
    /// A tracker's announce reply.
    Tracker,
    /// Another peer's `ut_pex` message (BEP 11).
    Pex,
    /// It connected to us.
    Incoming,
    /// A magnet link's `x.pe`.
    Magnet,
    /// `--peer` on the command line.
    Manual,
    /// A DHT `get_peers` lookup (BEP 5).
    Dht,
}

impl PeerSource {
    /// How the summary and the logs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerSource::Tracker => "tracker",
            PeerSource::Pex => "pex",
            PeerSource::Incoming => "incoming",
            PeerSource::Magnet => "magnet",
            PeerSource::Manual => "--peer",
            PeerSource::Dht => "dht",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Connecting,
    Connected,
}

#[derive(Debug)]
struct Candidate {
    /// Where it was first heard of.
    source: PeerSource,
    /// First heard of in a hybrid's v2 swarm (its announce under the truncated v2 info-hash): we
    /// dial it with that hash.
    v2: bool,
    state: State,
    fails: u32,
    next_try: Instant,
}

/// The peer address book of one torrent.
#[derive(Debug, Default)]
pub struct Pool {
    known: HashMap<SocketAddr, Candidate>,
    never: std::collections::HashSet<SocketAddr>,
}

impl Pool {
    /// Adds addresses heard of from `source`; returns how many were new (a known address keeps the
    /// source it was first heard from).
    pub fn add(&mut self, addrs: &[SocketAddr], source: PeerSource, now: Instant) -> usize {
        self.add_in(addrs, source, false, now)
    }

    /// [`Pool::add`], saying whether the addresses came from a hybrid's v2 swarm (`v2`); an
    /// address keeps the swarm it was first heard of in.
    pub fn add_in(
        &mut self,
        addrs: &[SocketAddr],
        source: PeerSource,
        v2: bool,
        now: Instant,
    ) -> usize {
        let mut added = 0;
        for a in addrs {
            if self.known.len() >= MAX_KNOWN {
                break;
            }
            if a.port() == 0 || a.ip().is_unspecified() || self.never.contains(a) {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = self.known.entry(*a) {
                e.insert(Candidate {
                    source,
                    v2,
                    state: State::Idle,
                    fails: 0,
                    next_try: now,
                });
                added += 1;
            }
        }
        added
    }

    /// Up to `n` addresses due for a dial, marked as connecting; least-failed first.
    pub fn due(&mut self, now: Instant, n: usize) -> Vec<SocketAddr> {
        let mut due: Vec<(u32, SocketAddr)> = self
            .known
            .iter()
            .filter(|(_, c)| c.state == State::Idle && c.next_try <= now)
            .map(|(a, c)| (c.fails, *a))
            .collect();
        due.sort();
        due.truncate(n);
        due.into_iter()
            .map(|(_, a)| {
                if let Some(c) = self.known.get_mut(&a) {
                    c.state = State::Connecting;
                }
                a
            })
            .collect()
    }

    /// The handshake with `addr` succeeded.
    pub fn connected(&mut self, addr: SocketAddr) {
        if let Some(c) = self.known.get_mut(&addr) {
            c.state = State::Connected;
            c.fails = 0;
        }
    }

    /// The connection attempt or connection to `addr` ended. `permanent`: never again.
    pub fn ended(&mut self, addr: SocketAddr, permanent: bool, now: Instant) {
        if permanent {
            self.known.remove(&addr);
            self.never.insert(addr);
            return;
        }
        let Some(c) = self.known.get_mut(&addr) else {
            return;
        };
        c.fails += 1;
        if c.fails >= MAX_FAILS {
            self.known.remove(&addr);
            return;
        }
        c.state = State::Idle;
        let backoff = RETRY_BASE.saturating_mul(1 << (c.fails - 1).min(16));
        c.next_try = now + backoff.min(RETRY_MAX);
    }

    /// Where `addr` was first heard of, if it is known.
    pub fn source(&self, addr: &SocketAddr) -> Option<PeerSource> {
        self.known.get(addr).map(|c| c.source)
    }

    /// Whether `addr` was first heard of in a hybrid's v2 swarm.
    pub fn v2_swarm(&self, addr: &SocketAddr) -> bool {
        self.known.get(addr).is_some_and(|c| c.v2)
    }

    /// Dials in progress.
    pub fn connecting(&self) -> usize {
        self.known
            .values()
            .filter(|c| c.state == State::Connecting)
            .count()
    }

    /// Addresses known that were first heard of from `source`.
    pub fn from_source(&self, source: PeerSource) -> usize {
        self.known.values().filter(|c| c.source == source).count()
    }

    /// Addresses that could be dialled now or later.
    pub fn idle(&self) -> usize {
        self.known
            .values()
            .filter(|c| c.state == State::Idle)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn new_addresses_are_due_at_once_and_only_once() {
        let now = crate::session::now();
        let mut p = Pool::default();
        assert_eq!(
            p.add(&[a(1), a(2), a(2), a(0)], PeerSource::Tracker, now),
            2
        );
        assert_eq!(p.add(&[a(1)], PeerSource::Tracker, now), 0);
        let mut due = p.due(now, 10);
        due.sort();
        assert_eq!(due, vec![a(1), a(2)]);
        assert!(p.due(now, 10).is_empty(), "already connecting");
        assert_eq!(p.connecting(), 2);
    }

    #[test]
    fn an_address_keeps_the_swarm_it_was_first_heard_of_in() {
        let now = crate::session::now();
        let mut p = Pool::default();
        assert_eq!(p.add_in(&[a(1)], PeerSource::Tracker, true, now), 1);
        assert_eq!(p.add(&[a(1), a(2)], PeerSource::Tracker, now), 1);
        assert_eq!(p.add_in(&[a(2)], PeerSource::Tracker, true, now), 0);
        assert!(p.v2_swarm(&a(1)));
        assert!(!p.v2_swarm(&a(2)), "heard of in the v1 swarm first");
        assert!(!p.v2_swarm(&a(3)), "unknown");
    }

    #[test]
    fn failures_back_off_exponentially_then_are_forgotten() {
        let t0 = crate::session::now();
        let mut p = Pool::default();
        p.add(&[a(1)], PeerSource::Tracker, t0);
        let mut now = t0;
        for k in 1..MAX_FAILS {
            assert_eq!(p.due(now, 1), vec![a(1)]);
            p.ended(a(1), false, now);
            let wait = RETRY_BASE * (1 << (k - 1));
            assert!(p.due(now + wait - Duration::from_millis(1), 1).is_empty());
            now += wait;
        }
        assert_eq!(p.due(now, 1), vec![a(1)]);
        p.ended(a(1), false, now);
        assert_eq!(p.idle(), 0, "forgotten after {MAX_FAILS} failures");
        assert_eq!(
            p.add(&[a(1)], PeerSource::Tracker, now),
            1,
            "a tracker may bring it back"
        );
    }

    #[test]
    fn an_address_keeps_the_source_it_was_first_heard_from() {
        let now = crate::session::now();
        let mut p = Pool::default();
        p.add(&[a(1)], PeerSource::Manual, now);
        p.add(&[a(1), a(2)], PeerSource::Tracker, now);
        assert_eq!(p.source(&a(1)), Some(PeerSource::Manual));
        assert_eq!(p.source(&a(2)), Some(PeerSource::Tracker));
        assert_eq!(p.source(&a(3)), None);
    }

    #[test]
    fn permanent_failures_never_come_back() {
        let now = crate::session::now();
        let mut p = Pool::default();
        p.add(&[a(1)], PeerSource::Tracker, now);
        p.due(now, 1);
        p.ended(a(1), true, now);
        assert_eq!(p.add(&[a(1)], PeerSource::Tracker, now), 0);
    }

    #[test]
    fn success_resets_the_failure_count_and_is_bounded() {
        let now = crate::session::now();
        let mut p = Pool::default();
        p.add(&[a(1)], PeerSource::Tracker, now);
        p.due(now, 1);
        p.ended(a(1), false, now);
        let later = now + RETRY_BASE;
        p.due(later, 1);
        p.connected(a(1));
        p.ended(a(1), false, later);
        assert!(p.due(later + RETRY_BASE, 1) == vec![a(1)]);
        let many: Vec<SocketAddr> = (1..=3000).map(|i| a(i as u16)).collect();
        let mut q = Pool::default();
        assert_eq!(q.add(&many, PeerSource::Tracker, now), MAX_KNOWN);
    }
}
