//! The Redis store: several tracker processes on one Redis (`--redis URL`) or one Redis Cluster
//! (`--redis-cluster URL,...`) serve one swarm state.
//!
//! Keys ([`keys`]): a torrent with hex info-hash `H` under prefix `P` is `P:{H}:peers` (hash: peer
//! id → packed address), `P:{H}:seen` (sorted set: peer id scored by last announce, so expiry reads
//! only the stale end), `P:{H}:seeders` (set of seeder ids) and `P:{H}:dl` (completed count): the
//! hash tag `{H}` keeps one swarm in one cluster slot. Across torrents, per bucket: `P:{T}:torrents`
//! (sorted set of hashes by last announce, for the sweep) and `P:{T}:totals` (seeders, leechers,
//! completed, kept exact because every change happens inside a Lua script). A single Redis has one
//! bucket (`T` = `all`); a cluster has one per slot (`T` hashes to the slot), so every script
//! touches one slot, and [`SwarmStore::totals`] sums the buckets (one request per bucket).
//!
//! One announce is one round trip: a script expires the swarm's stale peers, applies the event,
//! and samples peers with `HRANDFIELD` (Redis 6.2 or newer). The same script enforces [`Limits`]:
//! it refuses, writing nothing, a new swarm or peer past `--max-torrents` / `--max-peers-total`,
//! counting its own bucket as it is and the others as this process last read them ([`held`]): exact
//! on a single Redis; on a cluster, other processes' and concurrent announces' changes in other
//! slots are seen up to [`REFRESH`] late, so the bounds can be passed by that much.
//!
//! A call that takes longer than [`TIMEOUT`] (Redis down, stuck, or a cluster failing over) is
//! `Unavailable`; the clients reconnect (and find the promoted replica) in the background, so
//! service resumes by itself.

mod held;
pub mod keys;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};

use self::held::Held;
use self::keys::Layout;
use super::store::{
    AnnounceIn, AnnounceOut, Counts, Event, Id, Limit, Limits, StoreError, SwarmStore, Totals,
};
use super::swarm::Peer;
use crate::types::PeerId;

/// Longest wait for Redis on one request (under the 1.5 s a client may wait for a failure reply).
pub const TIMEOUT: Duration = Duration::from_millis(1200);
/// On a cluster, how often an announcing process re-reads every bucket's counts (for the bounds).
pub const REFRESH: Duration = Duration::from_secs(2);
/// Torrents one sweep script clears (Redis runs nothing else meanwhile, so keep each call short).
const SWEEP_BATCH: u32 = 200;
/// Longest one sweep goes on calling the script while whole batches come back: after a flood of
/// `--max-torrents` swarms, room comes back within a few sweeps, not one batch a sweep.
const SWEEP_BUDGET: Duration = Duration::from_secs(1);
/// Requests in flight when a cluster's buckets are read or swept.
const WORKERS: usize = 32;

const COMMON: &str = include_str!("redis_store/common.lua");
const ANNOUNCE: &str = include_str!("redis_store/announce.lua");
const SCRAPE: &str = include_str!("redis_store/scrape.lua");
const SWEEP: &str = include_str!("redis_store/sweep.lua");

/// One Redis (reconnecting in the background) or a cluster (following its slots).
#[derive(Clone)]
enum Con {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Con {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Con::Single(c) => c.req_packed_command(cmd),
            Con::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Con::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Con::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Con::Single(c) => c.get_db(),
            Con::Cluster(c) => c.get_db(),
        }
    }
}

/// The connection in use; on a cluster, rebuilt (at most once a second) after a failed call, since
/// a request cut short by [`TIMEOUT`] never lets the client refresh its slot map by itself, so it
/// would go on asking a dead primary after its replica took over.
struct Cell {
    current: std::sync::RwLock<Con>,
    cluster: Option<(ClusterClient, ClusterConfig)>,
    rebuilt: std::sync::Mutex<Instant>,
}

impl Cell {
    fn get(&self) -> Con {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// `r`, after a rebuild of a cluster connection if `r` says the store is unavailable.
    fn check<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let (Err(StoreError::Unavailable(_)), Some((client, config))) = (&r, &self.cluster) {
            let mut rebuilt = match self.rebuilt.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if rebuilt.elapsed() >= Duration::from_secs(1) {
                *rebuilt = Instant::now();
                let fresh = client.get_pending_async_connection_with_config(config.clone());
                match self.current.write() {
                    Ok(mut c) => *c = Con::Cluster(fresh),
                    Err(poisoned) => *poisoned.into_inner() = Con::Cluster(fresh),
                }
            }
        }
        r
    }
}

/// The connection, the layout and what the buckets held: cloned into background reads.
#[derive(Clone)]
struct Shared {
    con: Arc<Cell>,
    layout: Arc<Layout>,
    held: Arc<Held>,
}

/// Swarms in Redis.
pub struct RedisStore {
    shared: Shared,
    ttl: u64,
    limits: Limits,
    announce: Script,
    scrape: Script,
    sweep: Script,
    /// When the buckets were last read (milliseconds since `started`), and whether a read runs.
    started: Instant,
    last_read: Arc<AtomicU64>,
    reading: Arc<AtomicBool>,
}

fn hex(id: &Id) -> String {
    id.to_hex()
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A Redis answer within [`TIMEOUT`], its error sorted: down or slow is `Unavailable`.
async fn bounded<T>(
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e))
            if e.is_io_error()
                || e.is_timeout()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_cluster_error() =>
        {
            Err(unavailable(e))
        }
        Ok(Err(e)) => Err(StoreError::Backend(e.to_string())),
        Err(_) => Err(unavailable("no answer within 1.2 s")),
    }
}

/// `4|6`, the address bytes, the port (big-endian), the peer id.
fn pack(p: &Peer) -> Vec<u8> {
    let mut out = Vec::with_capacity(39);
    match p.addr.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&p.addr.port().to_be_bytes());
    out.extend_from_slice(&p.id.0);
    out
}

fn unpack(b: &[u8]) -> Option<Peer> {
    let (ip, rest): (IpAddr, &[u8]) = match b.first()? {
        4 if b.len() == 1 + 4 + 2 + 20 => {
            let o: [u8; 4] = b[1..5].try_into().ok()?;
            (Ipv4Addr::from(o).into(), &b[5..])
        }
        6 if b.len() == 1 + 16 + 2 + 20 => {
            let o: [u8; 16] = b[1..17].try_into().ok()?;
            (Ipv6Addr::from(o).into(), &b[17..])
        }
        _ => return None,
    };
    Some(Peer {
        addr: SocketAddr::new(ip, u16::from_be_bytes([rest[0], rest[1]])),
        id: PeerId(rest[2..22].try_into().ok()?),
        seeder: false,
    })
}

impl Shared {
    /// Reads every bucket's counts (remembering them in `held`) and sums them.
    async fn read_all(&self) -> Result<Totals, StoreError> {
        let n = self.layout.buckets();
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..WORKERS.min(n) {
            let me = self.clone();
            tasks.spawn(async move {
                let mut sum = Totals::default();
                for b in (w..n).step_by(WORKERS) {
                    let t = me.read_bucket(b).await?;
                    sum.torrents += t.torrents;
                    sum.seeders += t.seeders;
                    sum.leechers += t.leechers;
                    sum.completed += t.completed;
                }
                Ok::<Totals, StoreError>(sum)
            });
        }
        let mut sum = Totals::default();
        while let Some(r) = tasks.join_next().await {
            let t = r.map_err(|e| StoreError::Backend(e.to_string()))??;
            sum.torrents += t.torrents;
            sum.seeders += t.seeders;
            sum.leechers += t.leechers;
            sum.completed += t.completed;
        }
        Ok(sum)
    }

    /// One bucket's counts (one slot: one pipeline).
    async fn read_bucket(&self, b: usize) -> Result<Totals, StoreError> {
        let generation = self.held.generation(b);
        let mut con = self.con.get();
        let (torrents, fields): (u64, Vec<Option<i64>>) = self.con.check(
            bounded(
                redis::pipe()
                    .zcard(self.layout.torrents(b))
                    .cmd("HMGET")
                    .arg(self.layout.totals(b))
                    .arg("seeders")
                    .arg("leechers")
                    .arg("completed")
                    .query_async(&mut con),
            )
            .await,
        )?;
        let get = |i: usize| fields.get(i).copied().flatten().unwrap_or(0).max(0) as u64;
        let t = Totals {
            torrents,
            seeders: get(0),
            leechers: get(1),
            completed: get(2),
        };
        self.held
            .set_read(b, generation, t.torrents, t.seeders + t.leechers);
        Ok(t)
    }

    /// Sweeps bucket `b` until it has nothing stale left or `deadline` passes.
    async fn sweep_bucket(
        &self,
        script: &Script,
        b: usize,
        cutoff: u64,
        deadline: Instant,
    ) -> Result<u64, StoreError> {
        let mut gone = 0;
        loop {
            let mut con = self.con.get();
            let mut call = script.prepare_invoke();
            call.key(self.layout.torrents(b))
                .key(self.layout.totals(b))
                .arg(self.layout.swarm_prefix())
                .arg(cutoff)
                .arg(SWEEP_BATCH);
            let (peers, torrents): (u64, u32) =
                self.con.check(bounded(call.invoke_async(&mut con)).await)?;
            gone += peers;
            if torrents < SWEEP_BATCH || Instant::now() >= deadline {
                return Ok(gone);
            }
        }
    }
}

impl RedisStore {
    /// One Redis at `url`. Connects lazily (the first request dials); `health` tells whether
    /// Redis answers now.
    pub fn new(
        url: &str,
        prefix: &str,
        ttl: u64,
        limits: Limits,
    ) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::Backend(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let con = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let cell = Cell {
            current: std::sync::RwLock::new(Con::Single(con)),
            cluster: None,
            rebuilt: std::sync::Mutex::new(Instant::now()),
        };
        Ok(Self::with(cell, Layout::single(prefix), ttl, limits))
    }

    /// A Redis Cluster reached through any of `urls` (it finds the other nodes). Connects
    /// lazily, like [`RedisStore::new`].
    pub fn cluster(
        urls: &[String],
        prefix: &str,
        ttl: u64,
        limits: Limits,
    ) -> Result<RedisStore, StoreError> {
        let client = ClusterClient::builder(urls.iter().map(String::as_str))
            .retries(2)
            .min_retry_wait(50)
            .max_retry_wait(400)
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let config = ClusterConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT);
        let con = client.get_pending_async_connection_with_config(config.clone());
        let cell = Cell {
            current: std::sync::RwLock::new(Con::Cluster(con)),
            cluster: Some((client, config)),
            rebuilt: std::sync::Mutex::new(Instant::now()),
        };
        Ok(Self::with(cell, Layout::cluster(prefix), ttl, limits))
    }

    fn with(con: Cell, layout: Layout, ttl: u64, limits: Limits) -> RedisStore {
        let held = Arc::new(Held::new(layout.buckets()));
        RedisStore {
            shared: Shared {
                con: Arc::new(con),
                layout: Arc::new(layout),
                held,
            },
            ttl,
            limits,
            announce: Script::new(&format!("{COMMON}\n{ANNOUNCE}")),
            scrape: Script::new(&format!("{COMMON}\n{SCRAPE}")),
            sweep: Script::new(&format!("{COMMON}\n{SWEEP}")),
            started: Instant::now(),
            last_read: Arc::new(AtomicU64::new(0)),
            reading: Arc::new(AtomicBool::new(false)),
        }
    }

    fn swarm(&self, kind: &str, hex: &str) -> String {
        self.shared.layout.swarm(kind, hex)
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// On a cluster, starts reading every bucket in the background when the last read is older
    /// than [`REFRESH`] (and none runs), so the bounds see other processes' swarms.
    fn refresh_if_old(&self) {
        if self.shared.layout.buckets() == 1 {
            return;
        }
        let now = self.millis();
        let last = self.last_read.load(Relaxed);
        if last != 0 && now.saturating_sub(last) < REFRESH.as_millis() as u64 {
            return;
        }
        if self.reading.swap(true, Relaxed) {
            return;
        }
        self.last_read.store(now.max(1), Relaxed);
        let (shared, reading) = (self.shared.clone(), self.reading.clone());
        tokio::spawn(async move {
            if let Err(e) = shared.read_all().await {
                tracing::debug!("reading the cluster's counts: {e}");
            }
            reading.store(false, Relaxed);
        });
    }
}

impl SwarmStore for RedisStore {
    async fn announce(&self, a: AnnounceIn) -> Result<AnnounceOut, StoreError> {
        let event = match a.event {
            Event::None => "",
            Event::Started => "started",
            Event::Completed => "completed",
            Event::Stopped => "stopped",
        };
        let h = hex(&a.info_hash);
        let layout = &self.shared.layout;
        let b = layout.bucket(&h);
        let (elsewhere_torrents, elsewhere_peers) = self.shared.held.elsewhere(b);
        let mut con = self.shared.con.get();
        let mut call = self.announce.prepare_invoke();
        call.key(self.swarm("peers", &h))
            .key(self.swarm("seen", &h))
            .key(self.swarm("seeders", &h))
            .key(self.swarm("dl", &h))
            .key(layout.torrents(b))
            .key(layout.totals(b))
            .arg(&a.peer.id.0[..])
            .arg(pack(&a.peer))
            .arg(if a.peer.seeder { "1" } else { "0" })
            .arg(event)
            .arg(a.now)
            .arg(a.now.saturating_sub(self.ttl))
            .arg(a.numwant)
            .arg(&h)
            .arg(self.limits.torrents)
            .arg(self.limits.peers)
            .arg(elsewhere_torrents)
            .arg(elsewhere_peers);
        type Reply = (u64, u64, u64, Vec<Vec<u8>>, u8, u64, u64);
        let (complete, incomplete, downloaded, peers, refused, bucket_torrents, bucket_peers): Reply =
            self.shared.con.check(bounded(call.invoke_async(&mut con)).await)?;
        self.shared.held.set(b, bucket_torrents, bucket_peers);
        self.refresh_if_old();
        match refused {
            0 => {}
            1 => return Err(self.limits.refusal(Limit::Torrents)),
            2 => return Err(self.limits.refusal(Limit::Peers)),
            n => return Err(StoreError::Backend(format!("announce script answered {n}"))),
        }
        Ok(AnnounceOut {
            counts: Counts {
                complete,
                incomplete,
                downloaded,
            },
            peers: peers.iter().filter_map(|b| unpack(b)).collect(),
        })
    }

    async fn scrape(&self, hashes: &[Id], now: u64) -> Result<Vec<Counts>, StoreError> {
        // One script a hash (each swarm is its own slot), all in flight at once.
        let cutoff = now.saturating_sub(self.ttl);
        let mut tasks = tokio::task::JoinSet::new();
        for (i, id) in hashes.iter().enumerate() {
            let h = hex(id);
            let layout = &self.shared.layout;
            let b = layout.bucket(&h);
            let keys = [
                self.swarm("peers", &h),
                self.swarm("seen", &h),
                self.swarm("seeders", &h),
                self.swarm("dl", &h),
                layout.torrents(b),
                layout.totals(b),
            ];
            let (script, cell) = (self.scrape.clone(), self.shared.con.clone());
            tasks.spawn(async move {
                let mut call = script.prepare_invoke();
                for k in keys {
                    call.key(k);
                }
                call.arg(cutoff).arg(h);
                let mut con = cell.get();
                let c: (u64, u64, u64) = cell.check(bounded(call.invoke_async(&mut con)).await)?;
                Ok::<_, StoreError>((i, c))
            });
        }
        let mut out = vec![Counts::default(); hashes.len()];
        while let Some(r) = tasks.join_next().await {
            let (i, (complete, incomplete, downloaded)) =
                r.map_err(|e| StoreError::Backend(e.to_string()))??;
            out[i] = Counts {
                complete,
                incomplete,
                downloaded,
            };
        }
        Ok(out)
    }

    async fn totals(&self) -> Result<Totals, StoreError> {
        let t = self.shared.read_all().await?;
        self.last_read.store(self.millis().max(1), Relaxed);
        Ok(t)
    }

    async fn health(&self) -> Result<(), StoreError> {
        let mut con = self.shared.con.get();
        let cell = &self.shared.con;
        match con.clone() {
            Con::Single(_) => {
                let pong: String =
                    cell.check(bounded(redis::cmd("PING").query_async(&mut con)).await)?;
                if pong == "PONG" {
                    Ok(())
                } else {
                    Err(StoreError::Backend(format!("PING answered {pong:?}")))
                }
            }
            Con::Cluster(_) => {
                // Any node tells whether every slot has a primary (not so while failing over).
                let mut ask = redis::cmd("CLUSTER");
                ask.arg("INFO");
                let info: String = cell.check(bounded(ask.query_async(&mut con)).await)?;
                if info.lines().any(|l| l.trim() == "cluster_state:ok") {
                    Ok(())
                } else {
                    Err(unavailable(
                        "the cluster is failing over (cluster_state is not ok)",
                    ))
                }
            }
        }
    }

    async fn sweep(&self, now: u64) -> Result<u64, StoreError> {
        let deadline = Instant::now() + SWEEP_BUDGET;
        let cutoff = now.saturating_sub(self.ttl);
        let n = self.shared.layout.buckets();
        if n == 1 {
            return self
                .shared
                .sweep_bucket(&self.sweep, 0, cutoff, deadline)
                .await;
        }
        // A cluster: read which buckets hold torrents, then sweep those.
        self.totals().await?;
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..WORKERS {
            let (shared, script) = (self.shared.clone(), self.sweep.clone());
            tasks.spawn(async move {
                let mut gone = 0;
                for b in (w..n).step_by(WORKERS) {
                    if shared.held.holds_torrents(b) {
                        gone += shared.sweep_bucket(&script, b, cutoff, deadline).await?;
                    }
                }
                Ok::<u64, StoreError>(gone)
            });
        }
        let mut gone = 0;
        while let Some(r) = tasks.join_next().await {
            gone += r.map_err(|e| StoreError::Backend(e.to_string()))??;
        }
        Ok(gone)
    }

    fn kind(&self) -> &'static str {
        match self.shared.con.cluster {
            None => "redis",
            Some(_) => "redis-cluster",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_v4_and_v6() {
        for addr in ["1.2.3.4:6881", "[2001:db8::7]:51413"] {
            let p = Peer {
                id: PeerId(*b"-PX0100-abcdefghijkl"),
                addr: addr.parse().unwrap(),
                seeder: false,
            };
            assert_eq!(unpack(&pack(&p)), Some(p));
        }
        assert_eq!(unpack(b""), None);
        assert_eq!(unpack(&[4, 1, 2, 3]), None);
        assert_eq!(unpack(&[9; 27]), None);
    }
}
