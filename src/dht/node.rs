//! The DHT node's IO shell: a UDP socket per address family (BEP 32; the port number of the peer
//! listener), a routing table each, a receive task per socket
//! that answers queries (`ping`, `find_node`, `get_peers`, `announce_peer`; others get error 204)
//! and hands responses to the query waiting for them, and a maintenance task (bootstrap, token
//! rotation, store expiry, bucket refresh, saving the table). Lookups drive [`Lookup`] with real
//! queries. Every query waits at most [`QUERY_TIMEOUT`]; at most [`MAX_PENDING`] are in flight;
//! incoming queries are rate-limited per source.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::oneshot;

use super::id::NodeId;
use super::krpc::{Body, Message, Query, Response};
use super::lookup::Lookup;
use super::persist::{self, Saved};
use super::store::Store;
use super::table::{Policy, Table, K};
use super::token::Tokens;
use crate::net::Bind;
use serve::{receive, Limiter};
use sockets::Sockets;

mod serve;
mod sockets;

/// Time for a node to answer a query.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Queries of ours in flight at once.
pub const MAX_PENDING: usize = 256;
/// A query unanswered this long no longer holds up its lookup (its answer still counts): a dead
/// node costs a lookup 1 s, not [`QUERY_TIMEOUT`].
pub const SOFT_TIMEOUT: Duration = Duration::from_secs(1);
/// Time one lookup may take in all.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Queries answered per second per source (address and port with local nodes allowed, else IP),
/// with a burst of twice that.
pub const QUERIES_PER_SEC: f64 = 20.0;
/// Sources the rate limiter remembers.
const MAX_SOURCES: usize = 4096;
/// The routers every client knows (BEP 5 bootstrap), used unless `--dht-bootstrap` is given.
pub const DEFAULT_ROUTERS: [&str; 4] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
    "router.utorrent.com:6881",
];
/// Our client version in KRPC messages.
const VERSION: &[u8] = b"PX01";

/// Settings of the node.
#[derive(Debug, Clone)]
pub struct DhtConfig {
    /// Address and interface of the socket.
    pub net: Bind,
    /// UDP port: the peer listener's.
    pub port: u16,
    /// `HOST:PORT`s to bootstrap from (the default routers unless given).
    pub bootstrap: Vec<String>,
    /// Accept loopback and private nodes, several per IP (a local DHT, `--dht-bootstrap`).
    pub allow_local: bool,
    /// Where the routing table is saved (`None`: not saved).
    pub state: Option<PathBuf>,
}

struct Core {
    /// One routing table per address family (BEP 32): IPv4, IPv6.
    tables: [Table; 2],
    tokens: Tokens,
    store: Store,
    rng: StdRng,
    limiter: Limiter,
}

struct Pending {
    addr: SocketAddr,
    tx: oneshot::Sender<Result<Response, ()>>,
}

impl Core {
    fn table(&mut self, addr: &SocketAddr) -> &mut Table {
        &mut self.tables[usize::from(addr.is_ipv6())]
    }

    /// The K closest nodes of each family we have a table for.
    fn closest(&self, target: &NodeId) -> Vec<(NodeId, SocketAddr)> {
        let mut out = self.tables[0].closest(target, K);
        out.extend(self.tables[1].closest(target, K));
        out
    }
}

struct Inner {
    sockets: Sockets,
    own: NodeId,
    policy: Policy,
    config: DhtConfig,
    core: Mutex<Core>,
    pending: Mutex<HashMap<u16, Pending>>,
    next_tid: AtomicU16,
}

/// A running DHT node (cheap to clone).
#[derive(Clone)]
pub struct Dht {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dht {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dht").field("id", &self.inner.own).finish()
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Dht {
    /// Binds its own UDP port (no uTP beside it: `--info` of a magnet link, tests), loads the saved
    /// table, and starts the receive and maintenance tasks.
    pub async fn start(config: DhtConfig) -> std::io::Result<Dht> {
        let port = crate::udp::UdpPort::bind(&config.net, config.port).await?;
        let (dht, sinks) = Dht::start_on(config, &port);
        for (v6, krpc) in [false, true].into_iter().zip(sinks) {
            port.demux(
                v6,
                crate::udp::Sinks {
                    krpc,
                    ..Default::default()
                },
            );
        }
        Ok(dht)
    }

    /// Runs on the shared `port` (whose receive loops the caller starts, feeding the returned
    /// senders: IPv4, IPv6), loads the saved table, and starts the receive and maintenance tasks.
    pub fn start_on(
        config: DhtConfig,
        port: &crate::udp::UdpPort,
    ) -> (
        Dht,
        [Option<tokio::sync::mpsc::Sender<crate::udp::Datagram>>; 2],
    ) {
        let sockets = Sockets::of_port(port);
        let mut rng = StdRng::from_os_rng();
        let saved = config.state.as_deref().and_then(persist::load);
        let own = saved
            .as_ref()
            .map_or_else(|| NodeId::random(&mut rng), |s| s.id);
        let policy = Policy {
            allow_local: config.allow_local,
        };
        let t = now();
        let core = Core {
            tables: [Table::new(own, policy, t), Table::new(own, policy, t)],
            tokens: Tokens::new(&mut rng, t),
            store: Store::default(),
            rng,
            limiter: Limiter::default(),
        };
        let dht = Dht {
            inner: Arc::new(Inner {
                sockets,
                own,
                policy,
                config,
                core: Mutex::new(core),
                pending: Mutex::new(HashMap::new()),
                next_tid: AtomicU16::new(rand::random()),
            }),
        };
        let mut sinks = [None, None];
        for (k, v6) in [false, true].into_iter().enumerate() {
            if port.socket(v6).is_some() {
                let (tx, rx) = tokio::sync::mpsc::channel(crate::udp::QUEUE);
                tokio::spawn(receive(dht.inner.clone(), v6, rx));
                sinks[k] = Some(tx);
            }
        }
        let saved_nodes = saved.map(|s| s.nodes).unwrap_or_default();
        tokio::spawn(maintain(dht.clone(), saved_nodes));
        (dht, sinks)
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.inner.own
    }

    /// The UDP addresses the node listens on (IPv4, then IPv6 if any).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        let s = &self.inner.sockets;
        [s.v4.as_ref(), s.v6.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|u| u.local_addr().ok())
            .collect()
    }

    /// Nodes in the routing tables.
    pub fn nodes(&self) -> usize {
        let core = self.inner.core();
        core.tables[0].len() + core.tables[1].len()
    }

    /// Peers of `info_hash` found by a `get_peers` lookup, each handed to `found` as soon as a node
    /// names it (and all returned at the end); with `announce` (our TCP port), we then announce
    /// ourselves to the closest nodes that gave a token.
    pub async fn get_peers(
        &self,
        info_hash: NodeId,
        announce: Option<u16>,
        mut found: impl FnMut(&[SocketAddr]) + Send,
    ) -> Vec<SocketAddr> {
        let lookup = self.lookup(info_hash, true, &mut found).await;
        if let Some(port) = announce {
            for (_, addr, token) in lookup.closest_answered() {
                let Some(token) = token else { continue };
                let query = Query::AnnouncePeer {
                    info_hash,
                    port,
                    implied_port: false,
                    token,
                };
                let dht = self.clone();
                tokio::spawn(async move { dht.query(addr, query).await });
            }
        }
        lookup.peers().to_vec()
    }

    /// Runs one lookup of `target` (`get_peers` or `find_node`) to its end or [`LOOKUP_TIMEOUT`].
    async fn lookup(
        &self,
        target: NodeId,
        get_peers: bool,
        found: &mut (dyn FnMut(&[SocketAddr]) + Send),
    ) -> Lookup {
        let seeds = self.inner.core().closest(&target);
        let want = self.inner.sockets.want();
        let mut lookup = Lookup::new(target, &seeds);
        let mut tasks = tokio::task::JoinSet::new();
        let deadline = tokio::time::Instant::now() + LOOKUP_TIMEOUT;
        let mut asked: HashMap<NodeId, tokio::time::Instant> = HashMap::new();
        loop {
            for (id, addr) in lookup.next_queries() {
                asked.insert(id, tokio::time::Instant::now());
                let dht = self.clone();
                let query = if get_peers {
                    Query::GetPeers {
                        info_hash: target,
                        want,
                    }
                } else {
                    Query::FindNode { target, want }
                };
                tasks.spawn(async move { (id, dht.query(addr, query).await) });
            }
            if lookup.is_done() || tokio::time::Instant::now() >= deadline {
                break;
            }
            let tick = (tokio::time::Instant::now() + Duration::from_millis(100)).min(deadline);
            let next = match tokio::time::timeout_at(tick, tasks.join_next()).await {
                Err(_) => {
                    let now = tokio::time::Instant::now();
                    asked.retain(|id, at| {
                        let slow = now.saturating_duration_since(*at) >= SOFT_TIMEOUT;
                        if slow {
                            lookup.on_slow(id);
                        }
                        !slow
                    });
                    continue;
                }
                Ok(next) => next,
            };
            let Some(Ok((id, reply))) = next else {
                break;
            };
            asked.remove(&id);
            match reply {
                Some(r) => {
                    let nodes = self.usable_nodes(&r);
                    let before = lookup.peers().len();
                    lookup.on_reply(&id, &nodes, &r.values, r.token);
                    if lookup.peers().len() > before {
                        found(&lookup.peers()[before..]);
                    }
                }
                None => lookup.on_failure(&id),
            }
        }
        tasks.abort_all();
        tracing::debug!(target = %target, queries = lookup.sent(), peers = lookup.peers().len(), "DHT lookup done");
        lookup
    }

    fn usable_nodes(&self, r: &Response) -> Vec<(NodeId, SocketAddr)> {
        let v4 = r.nodes.iter().map(|(id, a)| (*id, SocketAddr::V4(*a)));
        let v6 = r.nodes6.iter().map(|(id, a)| (*id, SocketAddr::V6(*a)));
        v4.chain(v6)
            .filter(|(id, a)| {
                *id != self.inner.own
                    && self.inner.policy.accepts(a)
                    && self.inner.sockets.of(a).is_some()
            })
            .collect()
    }

    /// Sends `query` to `addr`; its response, or `None` (timeout, error reply, no room).
    async fn query(&self, addr: SocketAddr, query: Query) -> Option<Response> {
        let inner = &self.inner;
        let (tx, rx) = oneshot::channel();
        let tid = {
            let mut pending = inner.pending();
            if pending.len() >= MAX_PENDING {
                return None;
            }
            let mut tid = inner.next_tid.fetch_add(1, Ordering::Relaxed);
            while pending.contains_key(&tid) {
                tid = inner.next_tid.fetch_add(1, Ordering::Relaxed);
            }
            pending.insert(tid, Pending { addr, tx });
            tid
        };
        let msg = Message {
            tid: tid.to_be_bytes().to_vec(),
            body: Body::Query {
                id: inner.own,
                query,
            },
            ip: None,
            version: Some(VERSION.to_vec()),
        };
        let Some(socket) = inner.sockets.of(&addr) else {
            inner.pending().remove(&tid);
            return None;
        };
        let _ = socket.send_to(&msg.encode(), addr).await;
        let reply = tokio::time::timeout(QUERY_TIMEOUT, rx).await;
        inner.pending().remove(&tid);
        let mut core = inner.core();
        match reply {
            Ok(Ok(Ok(r))) => {
                if let Some(id) = r.id {
                    core.table(&addr).insert(id, addr, true, now());
                }
                Some(r)
            }
            _ => {
                let table = core.table(&addr);
                let id = table.nodes().find(|e| e.addr == addr).map(|e| e.id);
                if let Some(id) = id {
                    table.failed(&id);
                }
                None
            }
        }
    }

    /// A node heard of outside the DHT (a peer's BEP 5 `port` message): pinged, and kept if it
    /// answers.
    pub fn add_node(&self, addr: SocketAddr) {
        if !self.inner.policy.accepts(&addr) {
            return;
        }
        let dht = self.clone();
        tokio::spawn(async move { dht.query(addr, Query::Ping).await });
    }

    /// Saves the routing table, if a state file is configured.
    pub fn save(&self) {
        let Some(path) = self.inner.config.state.clone() else {
            return;
        };
        let nodes: Vec<(NodeId, SocketAddr)> = self
            .inner
            .core()
            .tables
            .iter()
            .flat_map(|t| t.nodes())
            .filter(|e| e.verified)
            .map(|e| (e.id, e.addr))
            .collect();
        let saved = Saved {
            id: self.inner.own,
            nodes,
            local: self.inner.policy.allow_local,
        };
        if let Err(e) = persist::save(&path, &saved) {
            tracing::debug!(path = %path.display(), error = %e, "DHT state not saved");
        }
    }

    /// Pings `addrs` (bootstrap routers, saved nodes) and then looks up our own id, which fills
    /// the table with our neighbourhood.
    async fn bootstrap(&self, addrs: Vec<SocketAddr>) {
        let mut pings = tokio::task::JoinSet::new();
        for addr in addrs.into_iter().take(64) {
            let dht = self.clone();
            pings.spawn(async move { dht.query(addr, Query::Ping).await });
        }
        while pings.join_next().await.is_some() {}
        let own = self.inner.own;
        self.lookup(own, false, &mut |_| {}).await;
        tracing::debug!(nodes = self.nodes(), "DHT bootstrapped");
    }
}

impl Inner {
    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<u16, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Bootstraps, then every minute rotates tokens, expires the store, refreshes stale buckets, and
/// every 10 minutes saves the table.
async fn maintain(dht: Dht, saved: Vec<(NodeId, SocketAddr)>) {
    let mut addrs: Vec<SocketAddr> = saved.iter().map(|(_, a)| *a).collect();
    for host in &dht.inner.config.bootstrap {
        let lookup = tokio::net::lookup_host(host.as_str());
        if let Ok(Ok(found)) = tokio::time::timeout(Duration::from_secs(5), lookup).await {
            let sockets = &dht.inner.sockets;
            addrs.extend(found.filter(|a| sockets.of(a).is_some()).take(4));
        } else {
            tracing::debug!(host = %crate::text::line(host), "DHT bootstrap node did not resolve");
        }
    }
    dht.bootstrap(addrs).await;
    dht.save();
    let mut minute = tokio::time::interval(Duration::from_secs(60));
    minute.tick().await;
    let mut ticks = 0u32;
    loop {
        minute.tick().await;
        ticks += 1;
        let (targets, stale) = {
            let mut core = dht.inner.core();
            let t = now();
            let Core {
                tokens,
                rng,
                store,
                tables,
                ..
            } = &mut *core;
            tokens.tick(rng, t);
            store.expire(t);
            let mut targets = Vec::new();
            let mut stale = Vec::new();
            for table in tables.iter_mut() {
                targets.extend(table.refresh_targets(t, rng));
                stale.extend(table.questionable(t, K));
            }
            (targets, stale)
        };
        // Nodes not heard from for 15 min are pinged: an answer refreshes them, silence counts
        // towards their replacement.
        for (_, addr) in stale {
            let dht = dht.clone();
            tokio::spawn(async move { dht.query(addr, Query::Ping).await });
        }
        for target in targets.into_iter().take(4) {
            dht.lookup(target, false, &mut |_| {}).await;
        }
        if ticks % 10 == 0 {
            dht.save();
        }
    }
}

#[cfg(test)]
mod tests;
