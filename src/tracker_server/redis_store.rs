//! The Redis store (`--redis URL`): several tracker processes on one Redis serve one swarm state.
//!
//! Per torrent (hex info-hash `H`, key prefix `P`): `P:peers:H` (hash: peer id → packed address),
//! `P:seen:H` (sorted set: peer id scored by last announce, so expiry reads only the stale end),
//! `P:seeders:H` (set of seeder ids) and `P:dl:H` (completed count). Across torrents: `P:torrents`
//! (sorted set of hashes by last announce, for the sweep) and `P:totals` (seeders, leechers,
//! completed, kept exact because every change happens inside a Lua script). One announce is one
//! round trip: a script expires the swarm's stale peers, applies the event, and samples peers with
//! `HRANDFIELD` (Redis 6.2 or newer). The same script enforces [`Limits`]: it refuses, writing
//! nothing, a new swarm when `P:torrents` holds `--max-torrents`, and a new peer when the totals'
//! seeders and leechers reach `--max-peers-total`, so keys cannot grow without bound. Scripts build
//! keys from the prefix, so this targets a single Redis (or a primary), not Redis Cluster.
//!
//! A call that takes longer than [`TIMEOUT`] (Redis down, or stuck) is `Unavailable`; the
//! connection manager reconnects in the background, so service resumes when Redis does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::store::{
    AnnounceIn, AnnounceOut, Counts, Event, Id, Limit, Limits, StoreError, SwarmStore, Totals,
};
use super::swarm::Peer;
use crate::types::PeerId;

/// Longest wait for Redis on one request.
pub const TIMEOUT: Duration = Duration::from_millis(1500);
/// Torrents one sweep script clears (Redis runs nothing else meanwhile, so keep each call short).
const SWEEP_BATCH: u32 = 200;
/// Longest one sweep goes on calling the script while whole batches come back: after a flood of
/// `--max-torrents` swarms, room comes back within a few sweeps, not one batch a sweep.
const SWEEP_BUDGET: Duration = Duration::from_secs(1);

const COMMON: &str = include_str!("redis_store/common.lua");
const ANNOUNCE: &str = include_str!("redis_store/announce.lua");
const SCRAPE: &str = include_str!("redis_store/scrape.lua");
const SWEEP: &str = include_str!("redis_store/sweep.lua");

/// Swarms in Redis.
pub struct RedisStore {
    con: ConnectionManager,
    prefix: String,
    ttl: u64,
    limits: Limits,
    announce: Script,
    scrape: Script,
    sweep: Script,
}

fn hex(id: &Id) -> String {
    id.to_hex()
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
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

impl RedisStore {
    /// Connects lazily (the first request dials); `check` tells whether Redis answers now.
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
        Ok(RedisStore {
            con,
            prefix: prefix.to_string(),
            ttl,
            limits,
            announce: Script::new(&format!("{COMMON}\n{ANNOUNCE}")),
            scrape: Script::new(&format!("{COMMON}\n{SCRAPE}")),
            sweep: Script::new(&format!("{COMMON}\n{SWEEP}")),
        })
    }

    fn key(&self, kind: &str, h: &Id) -> String {
        format!("{}:{kind}:{}", self.prefix, hex(h))
    }

    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(TIMEOUT, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => {
                Err(unavailable(e))
            }
            Ok(Err(e)) if e.is_connection_refusal() => Err(unavailable(e)),
            Ok(Err(e)) => Err(StoreError::Backend(e.to_string())),
            Err(_) => Err(unavailable("no answer within 1.5 s")),
        }
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
        let h = &a.info_hash;
        let mut con = self.con.clone();
        let mut call = self.announce.prepare_invoke();
        call.key(self.key("peers", h))
            .key(self.key("seen", h))
            .key(self.key("seeders", h))
            .key(self.key("dl", h))
            .key(format!("{}:torrents", self.prefix))
            .key(format!("{}:totals", self.prefix))
            .arg(&a.peer.id.0[..])
            .arg(pack(&a.peer))
            .arg(if a.peer.seeder { "1" } else { "0" })
            .arg(event)
            .arg(a.now)
            .arg(a.now.saturating_sub(self.ttl))
            .arg(a.numwant)
            .arg(hex(h))
            .arg(self.limits.torrents)
            .arg(self.limits.peers);
        let (complete, incomplete, downloaded, peers, refused): (u64, u64, u64, Vec<Vec<u8>>, u8) =
            self.bounded(call.invoke_async(&mut con)).await?;
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
        let mut con = self.con.clone();
        let mut call = self.scrape.prepare_invoke();
        call.key(format!("{}:torrents", self.prefix))
            .key(format!("{}:totals", self.prefix))
            .arg(&self.prefix)
            .arg(now.saturating_sub(self.ttl));
        for h in hashes {
            call.arg(hex(h));
        }
        let flat: Vec<u64> = self.bounded(call.invoke_async(&mut con)).await?;
        if flat.len() != hashes.len() * 3 {
            return Err(StoreError::Backend("short scrape reply".into()));
        }
        Ok(flat
            .chunks(3)
            .map(|c| Counts {
                complete: c[0],
                incomplete: c[1],
                downloaded: c[2],
            })
            .collect())
    }

    async fn totals(&self) -> Result<Totals, StoreError> {
        let mut con = self.con.clone();
        let (torrents, fields): (u64, Vec<Option<i64>>) = self
            .bounded(
                redis::pipe()
                    .zcard(format!("{}:torrents", self.prefix))
                    .cmd("HMGET")
                    .arg(format!("{}:totals", self.prefix))
                    .arg("seeders")
                    .arg("leechers")
                    .arg("completed")
                    .query_async(&mut con),
            )
            .await?;
        let get = |i: usize| fields.get(i).copied().flatten().unwrap_or(0).max(0) as u64;
        Ok(Totals {
            torrents,
            seeders: get(0),
            leechers: get(1),
            completed: get(2),
        })
    }

    async fn health(&self) -> Result<(), StoreError> {
        let mut con = self.con.clone();
        let pong: String = self
            .bounded(redis::cmd("PING").query_async(&mut con))
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Backend(format!("PING answered {pong:?}")))
        }
    }

    async fn sweep(&self, now: u64) -> Result<u64, StoreError> {
        let started = std::time::Instant::now();
        let mut gone = 0;
        loop {
            let mut con = self.con.clone();
            let mut call = self.sweep.prepare_invoke();
            call.key(format!("{}:torrents", self.prefix))
                .key(format!("{}:totals", self.prefix))
                .arg(&self.prefix)
                .arg(now.saturating_sub(self.ttl))
                .arg(SWEEP_BATCH);
            let (peers, torrents): (u64, u32) = self.bounded(call.invoke_async(&mut con)).await?;
            gone += peers;
            if torrents < SWEEP_BATCH || started.elapsed() >= SWEEP_BUDGET {
                return Ok(gone);
            }
        }
    }

    fn kind(&self) -> &'static str {
        "redis"
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
