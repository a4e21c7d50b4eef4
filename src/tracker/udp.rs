//! UDP trackers (BEP 15): the packet codec (pure) and [`UdpTracker`], one endpoint per tracker URL that
//! reuses its connection id for a minute and retransmits after `base * 2^n`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::proto::udp::{
    be32, be64, request_header, Action, ANNOUNCE_LEN, ANNOUNCE_REPLY_HEAD, PROTOCOL_ID,
    REPLY_HEADER, REQUEST_HEADER,
};
use super::proto::{read_compact, Family};
use super::{
    AnnounceRequest, AnnounceResponse, ScrapeStats, TrackerConfig, TrackerError,
    MAX_PEERS_PER_REPLY,
};
use crate::text::line as sanitize;
use crate::types::InfoHash;

/// Most info-hashes in one scrape request (BEP 15: about 74 fit in a safe datagram).
pub const MAX_SCRAPE_HASHES: usize = 74;
/// Largest datagram we read; replies are far smaller, extra peers are trimmed anyway.
const MAX_DATAGRAM: usize = 65_536;

/// A parsed reply to one of our requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The connection id to use for a minute.
    Connect(u64),
    /// Interval, counts and peers.
    Announce(AnnounceResponse),
    /// One entry per info-hash asked, in order.
    Scrape(Vec<ScrapeStats>),
    /// The tracker's error message.
    Error(String),
}

/// `connect` request: protocol id, action 0, transaction id.
pub fn encode_connect(tid: u32) -> Vec<u8> {
    request_header(PROTOCOL_ID, Action::Connect, tid, 0)
}

/// `announce` request: 98 bytes.
pub fn encode_announce(conn: u64, tid: u32, req: &AnnounceRequest) -> Vec<u8> {
    let numwant = req
        .numwant
        .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX));
    let mut out = request_header(conn, Action::Announce, tid, ANNOUNCE_LEN - REQUEST_HEADER);
    out.extend_from_slice(&req.info_hash.0);
    out.extend_from_slice(&req.peer_id.0);
    out.extend_from_slice(&req.downloaded.to_be_bytes());
    out.extend_from_slice(&req.left.to_be_bytes());
    out.extend_from_slice(&req.uploaded.to_be_bytes());
    out.extend_from_slice(&req.event.udp_code().to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // IP: the sender's
    out.extend_from_slice(&req.key.to_be_bytes());
    out.extend_from_slice(&numwant.to_be_bytes());
    out.extend_from_slice(&req.port.to_be_bytes());
    out
}

/// `scrape` request for up to [`MAX_SCRAPE_HASHES`] hashes (the rest are not sent).
pub fn encode_scrape(conn: u64, tid: u32, hashes: &[InfoHash]) -> Vec<u8> {
    let n = hashes.len().min(MAX_SCRAPE_HASHES);
    let mut out = request_header(conn, Action::Scrape, tid, 20 * n);
    for h in &hashes[..n] {
        out.extend_from_slice(&h.0);
    }
    out
}

/// Parses a datagram. `Ok(None)` means "not the reply to transaction `tid`" (late, stray or too short to
/// say), which the caller ignores; a reply to `tid` that is malformed is an error.
pub fn parse_reply(
    buf: &[u8],
    tid: u32,
    expected: Action,
    ipv6: bool,
) -> Result<Option<Reply>, TrackerError> {
    let (Some(action), Some(got)) = (be32(buf, 0), be32(buf, 4)) else {
        return Ok(None);
    };
    if got != tid {
        return Ok(None);
    }
    let short = |need: usize| {
        TrackerError::Malformed(format!(
            "UDP reply of {} bytes, expected at least {need}",
            buf.len()
        ))
    };
    let body = buf.get(REPLY_HEADER..).unwrap_or_default();
    if action == Action::Error.code() {
        return Ok(Some(Reply::Error(sanitize(&String::from_utf8_lossy(body)))));
    }
    if action != expected.code() {
        return Err(TrackerError::Malformed(format!(
            "UDP reply has action {action}, expected {}",
            expected.code()
        )));
    }
    let reply = match expected {
        Action::Connect => Reply::Connect(be64(buf, REPLY_HEADER).ok_or_else(|| short(16))?),
        Action::Announce => {
            if body.is_empty() {
                // opentracker's answer for a torrent off its whitelist: the header and nothing else.
                return Err(TrackerError::Malformed(
                    "empty UDP announce reply (the tracker may not track this torrent)".into(),
                ));
            }
            let (Some(interval), Some(leechers), Some(seeders)) =
                (be32(buf, 8), be32(buf, 12), be32(buf, 16))
            else {
                return Err(short(ANNOUNCE_REPLY_HEAD));
            };
            let family = if ipv6 { Family::V6 } else { Family::V4 };
            let mut peers = Vec::new();
            let list = buf.get(ANNOUNCE_REPLY_HEAD..).unwrap_or_default();
            read_compact(list, family, MAX_PEERS_PER_REPLY, &mut peers);
            Reply::Announce(AnnounceResponse {
                interval: Some(interval),
                leechers: Some(leechers),
                seeders: Some(seeders),
                peers,
                ..AnnounceResponse::default()
            })
        }
        Action::Scrape => Reply::Scrape(
            body.chunks_exact(12)
                .filter_map(|c| {
                    Some(ScrapeStats {
                        complete: be32(c, 0)?,
                        downloaded: be32(c, 4)?,
                        incomplete: be32(c, 8)?,
                    })
                })
                .collect(),
        ),
        Action::Error => {
            return Err(TrackerError::Malformed(
                "no request expects an error reply".into(),
            ))
        }
    };
    Ok(Some(reply))
}

/// One UDP tracker: its address, socket and connection id. Requests to it run one at a time.
pub struct UdpTracker {
    /// `host:port` from the URL.
    host_port: String,
    /// Socket and connection id; an async mutex because it is held across the request's awaits.
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Connected socket, and whether the tracker's address is IPv6 (18-byte peers).
    socket: Option<(UdpSocket, bool)>,
    /// Connection id and when it was issued.
    conn: Option<(u64, Instant)>,
}

impl UdpTracker {
    /// Checks the URL (`udp://host:port[/path]`); nothing is resolved or sent yet.
    pub fn new(url: &str) -> Result<UdpTracker, TrackerError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| TrackerError::BadUrl(format!("{}: {e}", sanitize(url))))?;
        let host = parsed.host_str().filter(|h| !h.is_empty());
        let (Some(host), Some(port)) = (host, parsed.port()) else {
            return Err(TrackerError::BadUrl(format!(
                "{}: a UDP tracker needs a host and a port",
                sanitize(url)
            )));
        };
        Ok(UdpTracker {
            host_port: format!("{host}:{port}"),
            state: tokio::sync::Mutex::new(State::default()),
        })
    }

    /// Announces.
    pub async fn announce(
        &self,
        cfg: &TrackerConfig,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        match self
            .request(cfg, Action::Announce, |conn, tid| {
                encode_announce(conn, tid, req)
            })
            .await?
        {
            Reply::Announce(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Scrapes up to [`MAX_SCRAPE_HASHES`] torrents.
    pub async fn scrape(
        &self,
        cfg: &TrackerConfig,
        hashes: &[InfoHash],
    ) -> Result<HashMap<InfoHash, ScrapeStats>, TrackerError> {
        match self
            .request(cfg, Action::Scrape, |conn, tid| {
                encode_scrape(conn, tid, hashes)
            })
            .await?
        {
            Reply::Scrape(stats) => Ok(hashes.iter().copied().zip(stats).collect()),
            other => Err(unexpected(other)),
        }
    }

    /// Runs one request: connects first when the connection id is missing or stale, retransmits after
    /// `base * 2^n` with n shared by the connect and the request, up to `udp_max_retries`.
    async fn request(
        &self,
        cfg: &TrackerConfig,
        action: Action,
        build: impl Fn(u64, u32) -> Vec<u8>,
    ) -> Result<Reply, TrackerError> {
        let mut st = self.state.lock().await;
        let result = self.request_locked(&mut st, cfg, action, build).await;
        if matches!(result, Err(TrackerError::Io(_))) {
            *st = State::default(); // a fresh socket next time
        }
        result
    }

    async fn request_locked(
        &self,
        st: &mut State,
        cfg: &TrackerConfig,
        action: Action,
        build: impl Fn(u64, u32) -> Vec<u8>,
    ) -> Result<Reply, TrackerError> {
        if st.socket.is_none() {
            st.socket = Some(self.open(cfg).await?);
        }
        let Some((socket, ipv6)) = st.socket.as_ref() else {
            return Err(TrackerError::Io("UDP socket unavailable".into()));
        };
        let started = Instant::now();
        for n in 0..=cfg.udp_max_retries {
            let wait = cfg.udp_base_timeout.saturating_mul(1 << n.min(16));
            let fresh = st
                .conn
                .filter(|(_, at)| at.elapsed() < cfg.udp_connection_ttl);
            let conn = match fresh {
                Some((id, _)) => id,
                None => {
                    let tid = rand::random();
                    send(socket, &encode_connect(tid)).await?;
                    match recv(socket, tid, Action::Connect, *ipv6, wait).await? {
                        None => continue,
                        Some(Reply::Connect(id)) => {
                            st.conn = Some((id, Instant::now()));
                            id
                        }
                        Some(Reply::Error(msg)) => return Err(TrackerError::Failure(msg)),
                        Some(other) => return Err(unexpected(other)),
                    }
                }
            };
            let tid = rand::random();
            send(socket, &build(conn, tid)).await?;
            match recv(socket, tid, action, *ipv6, wait).await? {
                None => continue,
                Some(Reply::Error(msg)) => {
                    st.conn = None; // the usual cause is an expired connection id
                    return Err(TrackerError::Failure(msg));
                }
                Some(reply) => return Ok(reply),
            }
        }
        Err(TrackerError::Timeout(started.elapsed()))
    }

    async fn open(&self, cfg: &TrackerConfig) -> Result<(UdpSocket, bool), TrackerError> {
        let timeout = cfg.connect_timeout;
        let lookup =
            tokio::time::timeout(timeout, tokio::net::lookup_host(self.host_port.as_str()))
                .await
                .map_err(|_| {
                    TrackerError::Io(format!("DNS lookup of {} timed out", self.host_port))
                })?;
        let addr = lookup
            .map_err(|e| TrackerError::Io(format!("cannot resolve {}: {e}", self.host_port)))?
            .find(|a| cfg.bind.reaches(a.ip()))
            .ok_or_else(|| {
                TrackerError::Io(format!(
                    "{} has no address reachable from {}",
                    self.host_port,
                    cfg.bind.describe()
                ))
            })?;
        // Connected: the kernel filters other senders and reports ICMP "port unreachable" as an error.
        let socket = crate::net::udp_connected(&cfg.bind, addr)
            .await
            .map_err(|e| TrackerError::Io(format!("UDP socket to {addr}: {e}")))?;
        Ok((socket, addr.is_ipv6()))
    }
}

async fn send(socket: &UdpSocket, packet: &[u8]) -> Result<(), TrackerError> {
    socket.send(packet).await.map(drop).map_err(io_error)
}

/// Waits up to `wait` for the reply to `tid`, skipping stray datagrams. `Ok(None)`: nothing in time.
async fn recv(
    socket: &UdpSocket,
    tid: u32,
    action: Action,
    ipv6: bool,
    wait: Duration,
) -> Result<Option<Reply>, TrackerError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Err(_) => return Ok(None),
            Ok(Err(e)) => return Err(io_error(e)),
            Ok(Ok(len)) => {
                if let Some(reply) = parse_reply(&buf[..len], tid, action, ipv6)? {
                    return Ok(Some(reply));
                }
            }
        }
    }
}

/// A well-formed reply of the wrong kind for the request.
fn unexpected(reply: Reply) -> TrackerError {
    TrackerError::Malformed(format!("unexpected reply {reply:?}"))
}

fn io_error(e: std::io::Error) -> TrackerError {
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        TrackerError::Io("connection refused (nothing listens on that UDP port)".into())
    } else {
        TrackerError::Io(format!("UDP: {e}"))
    }
}

#[cfg(test)]
mod tests;
