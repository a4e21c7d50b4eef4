//! A magnet link's first phase (BEP 9): its metadata fetched from peers before the download can
//! start. Peers come from the link's trackers, its `x.pe` and `--peer`; up to [`CONNECTIONS`] are
//! asked at once over `ut_metadata`, each piece checked as it arrives and the whole against the
//! info-hash by [`MetadataAssembler`]. A peer that lies about the size, sends a wrong piece or
//! rejects is dropped as a source; the fetch ends with the raw info dictionary (and the peers that
//! speak BEP 52, for the piece layers), or with a reason when no source is left to try.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::mse::Encryption;
use super::pool::{PeerSource, Pool};
use super::{now, SessionError};
use crate::net::Bind;
use crate::tracker::{AnnounceRequest, Event, TrackerClient, TrackerConfig};
use crate::types::{InfoHash, PeerId};
use crate::wire::ut_metadata::MetadataAssembler;

mod conn;

/// Peers asked for the metadata at once: several in parallel (a slow or lying one costs little),
/// few enough to stay polite.
pub const CONNECTIONS: usize = 8;
/// Re-announce while no peer has supplied the metadata.
const REANNOUNCE: Duration = Duration::from_secs(30);
/// Peers asked of each tracker.
const NUMWANT: u32 = 100;
/// With nothing left to try for this long after the start, the fetch gives up.
const SETTLE: Duration = Duration::from_secs(5);
/// Between DHT lookups while the metadata is missing.
const DHT_AGAIN: Duration = Duration::from_secs(30);

/// What the fetch starts from.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// The torrent's swarm id (`ids.swarm()`): handshakes, announces, the DHT.
    pub info_hash: InfoHash,
    /// The hashes the metadata must have (SHA-1, SHA-256 for a v2 link, both for a hybrid's).
    pub ids: crate::types::InfoHashes,
    /// Tracker URLs (the link's `tr`).
    pub trackers: Vec<String>,
    /// Peers to ask, with where they came from (`x.pe`, `--peer`).
    pub peers: Vec<(SocketAddr, PeerSource)>,
    /// How peers are reached.
    pub reach: Reach,
}

impl Fetch {
    /// The swarms asked for peers: the link's id, and for a hybrid link naming both hashes the
    /// truncated v2 id too (BEP 52: it joins both swarms).
    pub fn swarms(&self) -> Vec<InfoHash> {
        let v2 = self.ids.v2.map(|h| h.truncated());
        std::iter::once(self.info_hash)
            .chain(v2.filter(|h| *h != self.info_hash))
            .collect()
    }

    /// The id to handshake with `addr` under: the truncated v2 id for an address heard of in a
    /// hybrid link's v2 swarm (`v2`), else the link's.
    fn id_for(&self, v2: bool) -> InfoHash {
        match self.ids.v2 {
            Some(h) if v2 => h.truncated(),
            _ => self.info_hash,
        }
    }
}

/// How the fetch reaches peers: the download's network settings.
#[derive(Debug, Clone)]
pub struct Reach {
    /// Where our sockets come from.
    pub net: Bind,
    /// The port announced to trackers (the download's listening port; 0 if none yet).
    pub port: u16,
    /// The DHT, asked for peers too (`None`: off, or a private torrent).
    pub dht: Option<crate::dht::node::Dht>,
    /// MSE/PE on metadata connections (`--encryption`).
    pub encryption: Encryption,
    /// TCP and uTP, as the download dials.
    pub dialer: super::dial::Dialer,
}

/// What the fetch tasks share. A `std` mutex, held only in short synchronous steps.
struct Shared {
    asm: Option<MetadataAssembler<u64>>,
    /// The size each source claimed, to start over from another when every source of the first
    /// claim turned out useless (a hostile first claimer).
    claims: HashMap<u64, i64>,
    pool: Pool,
    next_key: u64,
    active: usize,
    trackers_tried: usize,
    last_error: Option<String>,
    info: Option<Vec<u8>>,
    /// Peers whose handshake set the BEP 52 bit, at most [`MAX_V2_PEERS`]: who is asked for the
    /// piece layers next.
    v2_peers: Vec<SocketAddr>,
}

/// Most v2-capable peers remembered for the piece-layer fetch.
const MAX_V2_PEERS: usize = 32;

impl Shared {
    /// Remembers a peer that set the BEP 52 bit.
    fn speaks_v2(&mut self, addr: SocketAddr) {
        if self.v2_peers.len() < MAX_V2_PEERS && !self.v2_peers.contains(&addr) {
            self.v2_peers.push(addr);
        }
    }
}

/// What the fetch brings back.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The `info` bytes, checked against every hash the link names.
    pub info: Vec<u8>,
    /// Peers that set the BEP 52 reserved bit, the first that answered first.
    pub v2_peers: Vec<SocketAddr>,
}

struct Ctx {
    fetch: Fetch,
    peer_id: PeerId,
    shared: Mutex<Shared>,
    done: Notify,
    wake: Notify,
}

impl Ctx {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Fetches the metadata; `progress` is called about every 2 s with a one-line status.
pub async fn fetch(
    fetch: Fetch,
    progress: impl Fn(&str) + Send + 'static,
) -> Result<Fetched, SessionError> {
    if fetch.trackers.is_empty() && fetch.peers.is_empty() && fetch.reach.dht.is_none() {
        return Err(SessionError::NoMetadata(
            "the magnet link names no tracker (tr) and no peer (x.pe), no --peer was given and \
             the DHT is off (--no-dht): there is nobody to ask"
                .into(),
        ));
    }
    let started = now();
    let mut pool = Pool::default();
    for (addr, source) in &fetch.peers {
        pool.add(&[*addr], *source, started);
    }
    let ctx = Arc::new(Ctx {
        peer_id: PeerId::generate(&mut rand::rng()),
        shared: Mutex::new(Shared {
            asm: None,
            claims: HashMap::new(),
            pool,
            next_key: 1,
            active: 0,
            trackers_tried: 0,
            last_error: None,
            info: None,
            v2_peers: Vec::new(),
        }),
        done: Notify::new(),
        wake: Notify::new(),
        fetch,
    });
    let client = Arc::new(
        TrackerClient::new(TrackerConfig {
            bind: ctx.fetch.reach.net.clone(),
            ..TrackerConfig::default()
        })
        .map_err(|e| SessionError::Fatal(e.to_string()))?,
    );
    let mut tasks = tokio::task::JoinSet::new();
    for url in ctx.fetch.trackers.clone() {
        for swarm in ctx.fetch.swarms() {
            tasks.spawn(announce(ctx.clone(), client.clone(), url.clone(), swarm));
        }
    }
    if let Some(dht) = ctx.fetch.reach.dht.clone() {
        for swarm in ctx.fetch.swarms() {
            tasks.spawn(dht_peers(ctx.clone(), dht.clone(), swarm));
        }
    }
    tasks.spawn(dial(ctx.clone()));
    let result = watch(&ctx, started, progress).await;
    tasks.abort_all();
    result
}

/// Waits for the metadata, reporting progress, until it arrives or nothing is left to try.
async fn watch(
    ctx: &Ctx,
    started: Instant,
    progress: impl Fn(&str),
) -> Result<Fetched, SessionError> {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        let ticked = tokio::select! {
            _ = ctx.done.notified() => false,
            _ = tick.tick() => true,
        };
        let s = ctx.lock();
        if let Some(info) = &s.info {
            return Ok(Fetched {
                info: info.clone(),
                v2_peers: s.v2_peers.clone(),
            });
        }
        let (have, pieces) = s.asm.as_ref().map_or((0, 0), |a| (a.have(), a.pieces()));
        if ticked {
            progress(&format!(
                "fetching metadata: {} peers asked now, {} to try, {have}/{pieces} pieces",
                s.active,
                s.pool.idle()
            ));
        }
        let nothing_left = s.active == 0 && s.pool.idle() == 0 && s.pool.connecting() == 0;
        let sources = ctx.fetch.trackers.len() + usize::from(ctx.fetch.reach.dht.is_some());
        let trackers_done = s.trackers_tried >= sources;
        if nothing_left && trackers_done && now().duration_since(started) > SETTLE {
            let why = s
                .last_error
                .clone()
                .unwrap_or_else(|| "no peer found".into());
            return Err(SessionError::NoMetadata(format!(
                "no peer could supply it (last: {why})"
            )));
        }
    }
}

/// Asks the DHT for peers of the torrent until the metadata is in: at once, then every
/// [`DHT_AGAIN`]. The first lookup counts as one more tracker tried.
async fn dht_peers(ctx: Arc<Ctx>, dht: crate::dht::node::Dht, swarm: InfoHash) {
    let target = crate::dht::id::NodeId(swarm.0);
    let v2 = swarm != ctx.fetch.info_hash;
    // The v2 swarm's lookups of a hybrid link do not count as one more source tried.
    let mut first = !v2;
    loop {
        let early = ctx.clone();
        let peers = dht
            .get_peers(target, None, move |found| {
                early.lock().pool.add_in(found, PeerSource::Dht, v2, now());
                early.wake.notify_one();
            })
            .await;
        {
            let mut s = ctx.lock();
            s.pool.add_in(&peers, PeerSource::Dht, v2, now());
            if first {
                s.trackers_tried += 1;
                first = false;
            }
            if peers.is_empty() {
                s.last_error = Some("the DHT knows no peer of this torrent".into());
            }
        }
        ctx.wake.notify_one();
        tokio::time::sleep(DHT_AGAIN).await;
    }
}

/// Announces to one tracker until the metadata is in, every [`REANNOUNCE`].
async fn announce(ctx: Arc<Ctx>, client: Arc<TrackerClient>, url: String, swarm: InfoHash) {
    let v2 = swarm != ctx.fetch.info_hash;
    // The v2 swarm's announces of a hybrid link do not count as one more tracker tried.
    let mut first = !v2;
    loop {
        let req = AnnounceRequest {
            info_hash: swarm,
            peer_id: ctx.peer_id,
            port: ctx.fetch.reach.port.max(1),
            uploaded: 0,
            downloaded: 0,
            // Unknown until the metadata is in: not zero, which would say we seed.
            left: 1,
            event: if first { Event::Started } else { Event::None },
            numwant: Some(NUMWANT),
            key: rand::random(),
            tracker_id: None,
        };
        let result =
            tokio::time::timeout(Duration::from_secs(30), client.announce(&url, &req)).await;
        {
            let mut s = ctx.lock();
            match result {
                Ok(Ok(r)) => {
                    s.pool.add_in(&r.peers, PeerSource::Tracker, v2, now());
                }
                Ok(Err(e)) => s.last_error = Some(format!("{}: {e}", crate::text::line(&url))),
                Err(_) => {
                    s.last_error = Some(format!("{}: no answer in time", crate::text::line(&url)))
                }
            }
            if first {
                s.trackers_tried += 1;
            }
        }
        first = false;
        ctx.wake.notify_one();
        ctx.done.notify_one();
        tokio::time::sleep(REANNOUNCE).await;
    }
}

/// Dials peers due in the pool, at most [`CONNECTIONS`] at a time.
async fn dial(ctx: Arc<Ctx>) {
    loop {
        let due = {
            let mut s = ctx.lock();
            let room = CONNECTIONS.saturating_sub(s.active);
            let due = s.pool.due(now(), room);
            s.active += due.len();
            due
        };
        for addr in due {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let key = {
                    let mut s = ctx.lock();
                    s.next_key += 1;
                    s.next_key
                };
                let result = conn::connection(&ctx, addr, key).await;
                let mut s = ctx.lock();
                s.active -= 1;
                if let Some(asm) = s.asm.as_mut() {
                    asm.source_gone(key);
                }
                restart_if_hopeless(&mut s, ctx.fetch.ids);
                let permanent = result.is_err();
                if let Err(why) = result {
                    tracing::debug!(peer = %addr, why = %why, "metadata source dropped");
                    s.last_error = Some(format!("{addr}: {why}"));
                }
                s.pool.ended(addr, permanent, now());
                drop(s);
                ctx.wake.notify_one();
                ctx.done.notify_one();
            });
        }
        tokio::select! {
            _ = ctx.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// When no source of the current claim is left while others claimed another size, starts over
/// from the size most of them claimed: a hostile first claimer cannot block the fetch.
fn restart_if_hopeless(s: &mut Shared, ids: crate::types::InfoHashes) {
    let Some(asm) = s.asm.as_ref() else { return };
    if asm.usable_sources() > 0 {
        return;
    }
    let current = i64::from(asm.size());
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for &size in s.claims.values().filter(|&&c| c != current) {
        *counts.entry(size).or_default() += 1;
    }
    if let Some((&size, _)) = counts.iter().max_by_key(|(_, n)| **n) {
        s.asm = MetadataAssembler::new(ids, size).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{InfoHashV2, InfoHashes};

    fn fetch(ids: InfoHashes) -> Fetch {
        Fetch {
            info_hash: ids.swarm(),
            ids,
            trackers: Vec::new(),
            peers: Vec::new(),
            reach: Reach {
                net: Bind::default(),
                port: 0,
                dht: None,
                encryption: Encryption::default(),
                dialer: super::super::dial::Dialer::tcp_only(Bind::default()),
            },
        }
    }

    #[test]
    fn a_hybrid_link_asks_both_swarms_and_dials_each_under_its_id() {
        let (v1, v2) = (InfoHash([1; 20]), InfoHashV2([2; 32]));
        let hybrid = fetch(InfoHashes {
            v1: Some(v1),
            v2: Some(v2),
        });
        assert_eq!(hybrid.swarms(), vec![v1, v2.truncated()]);
        assert_eq!(hybrid.id_for(false), v1);
        assert_eq!(hybrid.id_for(true), v2.truncated());
        let v2_only = fetch(InfoHashes {
            v1: None,
            v2: Some(v2),
        });
        assert_eq!(v2_only.swarms(), vec![v2.truncated()]);
        assert_eq!(v2_only.id_for(false), v2.truncated());
        let v1_only = fetch(InfoHashes::from(v1));
        assert_eq!(v1_only.swarms(), vec![v1]);
        assert_eq!(v1_only.id_for(true), v1);
    }
}
