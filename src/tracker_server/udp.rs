//! The UDP face (BEP 15) on the same store: connect, announce, scrape, error. Connection ids are an
//! HMAC of the client's address under a secret that rotates every [`ROTATE_SECS`]; the current and
//! the previous secret are accepted, so an id lives 2–4 minutes and cannot be forged or replayed
//! from another address. Announces and scrapes are answered by [`WORKERS`] tasks, each in the order
//! its datagrams came: one client's (one IP address's) always go to the same worker, so a `stopped`
//! sent right after a `started` or `completed` is applied after it. At most [`IN_FLIGHT`] wait in
//! all (more datagrams are dropped, as UDP allows). Before anything else, each datagram is checked
//! against its source address's token bucket ([`super::ratelimit`]): one flooding address gets its
//! rate and no more of the tracker's work, replies or queue slots.

use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::hmac::hmac_sha1;
use super::query::{Announce, DEFAULT_NUMWANT, MAX_NUMWANT};
use super::ratelimit::{SourceLimiter, DEFAULT_SLOTS};
use super::service::Tracker;
use super::store::SwarmStore;
use crate::tracker::proto::udp::{self as wire, decode_request, Refused};
use crate::tracker::proto::Family;
use crate::types::InfoHash;

/// Secret lifetime.
pub const ROTATE_SECS: u64 = 120;
/// Requests waiting to be answered, in all.
pub const IN_FLIGHT: usize = 1024;
/// Tasks answering announces and scrapes; each answers its requests one at a time, in order.
pub const WORKERS: usize = 64;
/// Hashes in one scrape (what fits a 1500-byte datagram, as opentracker allows).
pub const MAX_SCRAPE: usize = 74;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Connect {
        tid: u32,
    },
    Announce {
        conn: u64,
        tid: u32,
        a: Announce,
    },
    Scrape {
        conn: u64,
        tid: u32,
        hashes: Vec<InfoHash>,
    },
}

/// Parses a datagram (the protocol's decoder, then this tracker's policy: port 0 refused, `numwant`
/// defaulted and capped); `Err((tid, why))` when an error reply is due, `Err((None, _))` to ignore it.
pub fn parse(b: &[u8]) -> Result<Request, (Option<u32>, &'static str)> {
    let req = decode_request(b, MAX_SCRAPE).map_err(|Refused { tid, why }| (tid, why))?;
    Ok(match req {
        wire::Request::Connect { tid } => Request::Connect { tid },
        wire::Request::Scrape { conn, tid, hashes } => Request::Scrape { conn, tid, hashes },
        wire::Request::Announce { conn, tid, a } => {
            if a.port == 0 {
                return Err((Some(tid), "invalid port"));
            }
            let numwant =
                usize::try_from(a.numwant).map_or(DEFAULT_NUMWANT, |n| n.min(MAX_NUMWANT));
            let a = Announce {
                info_hash: a.info_hash,
                peer_id: a.peer_id,
                downloaded: a.downloaded,
                left: Some(a.left),
                uploaded: a.uploaded,
                event: a.event,
                compact: true,
                numwant,
                no_peer_id: true,
                key: Some(a.key.to_be_bytes().to_vec()),
                ip: a.ip.map(IpAddr::V4),
                port: a.port,
            };
            Request::Announce { conn, tid, a }
        }
    })
}

/// `action=3` with a message.
pub fn error(tid: u32, why: &str) -> Vec<u8> {
    wire::error_reply(tid, why)
}

/// Connection ids: an HMAC of the address under a rotating secret.
pub struct ConnIds {
    /// (epoch, current secret, previous secret).
    state: Mutex<(u64, [u8; 32], [u8; 32])>,
}

impl ConnIds {
    pub fn new(now: u64) -> ConnIds {
        ConnIds {
            state: Mutex::new((now / ROTATE_SECS, rand::random(), rand::random())),
        }
    }

    fn secrets(&self, now: u64) -> ([u8; 32], [u8; 32]) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let epoch = now / ROTATE_SECS;
        if epoch == s.0 + 1 {
            *s = (epoch, rand::random(), s.1);
        } else if epoch != s.0 {
            *s = (epoch, rand::random(), rand::random());
        }
        (s.1, s.2)
    }

    fn mac(secret: &[u8; 32], addr: &SocketAddr) -> u64 {
        let ip = match addr.ip().to_canonical() {
            IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
            IpAddr::V6(v) => v.octets(),
        };
        let h = hmac_sha1(secret, &[&ip, &addr.port().to_be_bytes()]);
        u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
    }

    /// An id for `addr` now.
    pub fn issue(&self, addr: &SocketAddr, now: u64) -> u64 {
        Self::mac(&self.secrets(now).0, addr)
    }

    /// Whether `id` was issued to `addr` in this epoch or the last.
    pub fn check(&self, id: u64, addr: &SocketAddr, now: u64) -> bool {
        let (cur, prev) = self.secrets(now);
        id == Self::mac(&cur, addr) || id == Self::mac(&prev, addr)
    }
}

/// Answers datagrams on `socket` until the task is aborted; `rate` datagrams a second per source
/// (bursts of twice that), 0 for no limit.
pub async fn serve<S: SwarmStore>(socket: UdpSocket, tracker: Arc<Tracker<S>>, rate: u32) {
    let socket = Arc::new(socket);
    let ids = Arc::new(ConnIds::new(super::service::now()));
    // The workers end when `queues` is dropped (this task aborted).
    let queues: Vec<mpsc::Sender<(Request, SocketAddr)>> = (0..WORKERS)
        .map(|_| {
            let (tx, mut rx) = mpsc::channel::<(Request, SocketAddr)>(IN_FLIGHT / WORKERS);
            let (socket, tracker) = (socket.clone(), tracker.clone());
            tokio::spawn(async move {
                while let Some((req, from)) = rx.recv().await {
                    let out = answer(&tracker, req, from).await;
                    let _ = socket.send_to(&out, from).await;
                }
            });
            tx
        })
        .collect();
    // Keyed per process, so that nobody can aim many addresses at one worker.
    let by_ip = std::hash::RandomState::new();
    let mut limiter = (rate > 0).then(|| {
        SourceLimiter::new(
            rate,
            rate.saturating_mul(2),
            DEFAULT_SLOTS,
            std::time::Instant::now(),
        )
    });
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(l) = limiter.as_mut() {
            if !l.allow(from.ip(), std::time::Instant::now()) {
                super::service::bump(&tracker.counters.udp_limited);
                continue;
            }
        }
        let now = super::service::now();
        let reply = match parse(&buf[..n]) {
            Ok(Request::Connect { tid }) => {
                super::service::bump(&tracker.counters.udp_connects);
                Some(wire::connect_reply(tid, ids.issue(&from, now)))
            }
            Ok(Request::Announce { conn, tid, .. } | Request::Scrape { conn, tid, .. })
                if !ids.check(conn, &from, now) =>
            {
                Some(error(tid, "invalid connection id"))
            }
            Ok(req) => {
                // A full queue drops the datagram; the client retransmits.
                let worker = by_ip.hash_one(from.ip().to_canonical()) as usize % WORKERS;
                let _ = queues[worker].try_send((req, from));
                None
            }
            Err((Some(tid), why)) => Some(error(tid, why)),
            Err((None, _)) => None,
        };
        if let Some(out) = reply {
            let _ = socket.send_to(&out, from).await;
        }
    }
}

async fn answer<S: SwarmStore>(t: &Tracker<S>, req: Request, from: SocketAddr) -> Vec<u8> {
    match req {
        Request::Announce { tid, a, .. } => match t.announce(&a, from.ip()).await {
            Ok(out) => {
                // Peers are stored canonical; the asker gets those of its own family.
                let family = Family::of(from.ip().to_canonical());
                let peers = out.peers.iter().map(|p| p.addr);
                wire::announce_reply(tid, t.settings.interval, out.counts, family, peers)
            }
            Err(why) => error(tid, &why),
        },
        Request::Scrape { tid, hashes, .. } => match t.scrape(&hashes).await {
            Ok(counts) => wire::scrape_reply(tid, &counts),
            Err(why) => error(tid, &why),
        },
        Request::Connect { tid } => error(tid, "unexpected connect"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::udp::{encode_announce, encode_connect, encode_scrape};
    use crate::tracker::{AnnounceRequest, Event};
    use crate::types::PeerId;

    #[test]
    fn parses_what_our_client_sends() {
        assert_eq!(parse(&encode_connect(7)), Ok(Request::Connect { tid: 7 }));
        let req = AnnounceRequest {
            info_hash: InfoHash([1; 20]),
            peer_id: PeerId([2; 20]),
            port: 6881,
            uploaded: 3,
            downloaded: 4,
            left: 0,
            event: Event::Completed,
            numwant: Some(30),
            key: 9,
            tracker_id: None,
        };
        let Ok(Request::Announce { conn, tid, a }) = parse(&encode_announce(55, 8, &req)) else {
            panic!("not an announce");
        };
        assert_eq!((conn, tid), (55, 8));
        assert_eq!(
            (a.info_hash, a.peer_id, a.port),
            (InfoHash([1; 20]), PeerId([2; 20]), 6881)
        );
        assert_eq!((a.uploaded, a.downloaded, a.left), (3, 4, Some(0)));
        assert_eq!((a.event, a.numwant), (Event::Completed, 30));
        let scrape = encode_scrape(55, 9, &[InfoHash([5; 20]), InfoHash([6; 20])]);
        assert_eq!(
            parse(&scrape),
            Ok(Request::Scrape {
                conn: 55,
                tid: 9,
                hashes: vec![InfoHash([5; 20]), InfoHash([6; 20])]
            })
        );
    }

    #[test]
    fn junk_is_ignored_or_refused() {
        assert_eq!(parse(&[0; 10]), Err((None, "short packet")));
        let mut bad_magic = encode_connect(1);
        bad_magic[0] ^= 1;
        assert_eq!(parse(&bad_magic), Err((None, "bad protocol id")));
        let short = wire::request_header(5, wire::Action::Announce, 0, 0);
        assert_eq!(parse(&short).unwrap_err().1, "short announce");
        let mut unknown = short.clone();
        unknown[11] = 9;
        assert_eq!(parse(&unknown).unwrap_err().1, "unknown action");
    }

    #[test]
    fn connection_ids_bind_address_and_time() {
        let ids = ConnIds::new(1000);
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let id = ids.issue(&a, 1000);
        assert!(ids.check(id, &a, 1000));
        assert!(!ids.check(id, &b, 1000), "another address");
        assert!(!ids.check(id ^ 1, &a, 1000), "forged");
        // Still valid in the next epoch, gone in the one after.
        assert!(ids.check(id, &a, 1000 + ROTATE_SECS));
        assert!(!ids.check(id, &a, 1000 + 2 * ROTATE_SECS + 1));
    }
}
