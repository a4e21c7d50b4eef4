//! BEP 15 datagrams (pure): the connect magic, actions, headers and big-endian readers that never
//! index past the end, the request decoder the server uses (the client encodes its requests with
//! [`request_header`]) and the reply encoders the client's `tracker::udp::parse_reply` reads.

use std::net::{Ipv4Addr, SocketAddr};

use super::{write_compact, Counts, Event, Family};
use crate::types::{InfoHash, PeerId};

/// The magic number in the connection-id field of a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Bytes of a request header: connection id, action, transaction id.
pub const REQUEST_HEADER: usize = 16;
/// Bytes of a reply header: action, transaction id.
pub const REPLY_HEADER: usize = 8;
/// Bytes of an announce request.
pub const ANNOUNCE_LEN: usize = 98;
/// Bytes of an announce reply before its peers: header, interval, leechers, seeders.
pub const ANNOUNCE_REPLY_HEAD: usize = 20;

/// What a datagram asks or answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Get a connection id.
    Connect = 0,
    /// Announce.
    Announce = 1,
    /// Scrape.
    Scrape = 2,
    /// A reply carrying an error message (never a request).
    Error = 3,
}

impl Action {
    /// The wire code.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The action of a wire code, if it is one.
    pub fn from_code(code: u32) -> Option<Action> {
        match code {
            0 => Some(Action::Connect),
            1 => Some(Action::Announce),
            2 => Some(Action::Scrape),
            3 => Some(Action::Error),
            _ => None,
        }
    }
}

/// The big-endian `u32` at `at`, if the buffer holds it.
pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    let w: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(w))
}

/// The big-endian `u64` at `at`, if the buffer holds it.
pub fn be64(b: &[u8], at: usize) -> Option<u64> {
    let w: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(w))
}

/// The 20 bytes at `at` (an info-hash or a peer id), if the buffer holds them.
pub fn id20(b: &[u8], at: usize) -> Option<[u8; 20]> {
    b.get(at..at.checked_add(20)?)?.try_into().ok()
}

/// A request's header; `capacity` reserves room for what follows.
pub fn request_header(conn: u64, action: Action, tid: u32, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(REQUEST_HEADER + capacity);
    out.extend_from_slice(&conn.to_be_bytes());
    out.extend_from_slice(&action.code().to_be_bytes());
    out.extend_from_slice(&tid.to_be_bytes());
    out
}

/// A reply's header; `capacity` reserves room for what follows.
pub fn reply_header(action: Action, tid: u32, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(REPLY_HEADER + capacity);
    out.extend_from_slice(&action.code().to_be_bytes());
    out.extend_from_slice(&tid.to_be_bytes());
    out
}

/// An announce request's fields as sent (the server applies its own policy to them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceFields {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub downloaded: u64,
    pub left: u64,
    pub uploaded: u64,
    pub event: Event,
    /// The `IP address` field; `None` when 0 (use the sender's).
    pub ip: Option<Ipv4Addr>,
    pub key: u32,
    /// Negative: the tracker's default.
    pub numwant: i32,
    pub port: u16,
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Connect {
        tid: u32,
    },
    Announce {
        conn: u64,
        tid: u32,
        a: AnnounceFields,
    },
    Scrape {
        conn: u64,
        tid: u32,
        /// At most the `max_scrape` given to [`decode_request`]; the rest are not read.
        hashes: Vec<InfoHash>,
    },
}

/// Why a datagram is not a request: `tid` is set when an error reply is due (the sender is
/// talking BEP 15 to us), `None` when the datagram is dropped unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub tid: Option<u32>,
    pub why: &'static str,
}

fn refused(tid: Option<u32>, why: &'static str) -> Refused {
    Refused { tid, why }
}

/// Decodes a request datagram, reading at most `max_scrape` hashes of a scrape.
pub fn decode_request(b: &[u8], max_scrape: usize) -> Result<Request, Refused> {
    let (Some(conn), Some(action), Some(tid)) = (be64(b, 0), be32(b, 8), be32(b, 12)) else {
        return Err(refused(None, "short packet"));
    };
    match Action::from_code(action) {
        Some(Action::Connect) if conn == PROTOCOL_ID => Ok(Request::Connect { tid }),
        Some(Action::Connect) => Err(refused(None, "bad protocol id")),
        Some(Action::Announce) => decode_announce(b)
            .map(|a| Request::Announce { conn, tid, a })
            .ok_or(refused(Some(tid), "short announce")),
        Some(Action::Scrape) => {
            let hashes: Vec<InfoHash> = b
                .get(REQUEST_HEADER..)
                .unwrap_or_default()
                .chunks_exact(20)
                .take(max_scrape)
                .filter_map(|c| id20(c, 0).map(InfoHash))
                .collect();
            if hashes.is_empty() {
                return Err(refused(Some(tid), "scrape without info_hash"));
            }
            Ok(Request::Scrape { conn, tid, hashes })
        }
        Some(Action::Error) | None => Err(refused(Some(tid), "unknown action")),
    }
}

/// The fields of an announce request; `None` when it is shorter than [`ANNOUNCE_LEN`].
fn decode_announce(b: &[u8]) -> Option<AnnounceFields> {
    let ip = be32(b, 84)?;
    let port = b.get(96..ANNOUNCE_LEN)?;
    Some(AnnounceFields {
        info_hash: InfoHash(id20(b, 16)?),
        peer_id: PeerId(id20(b, 36)?),
        downloaded: be64(b, 56)?,
        left: be64(b, 64)?,
        uploaded: be64(b, 72)?,
        event: Event::from_udp_code(be32(b, 80)?),
        ip: (ip != 0).then(|| Ipv4Addr::from(ip)),
        key: be32(b, 88)?,
        numwant: be32(b, 92)? as i32,
        port: u16::from_be_bytes([port[0], port[1]]),
    })
}

/// The reply to a connect: the connection id to use.
pub fn connect_reply(tid: u32, conn: u64) -> Vec<u8> {
    let mut out = reply_header(Action::Connect, tid, 8);
    out.extend_from_slice(&conn.to_be_bytes());
    out
}

/// A count as BEP 15 carries it: 32 bits, saturated.
fn count32(n: u64) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes()
}

/// The reply to an announce: interval, leechers, seeders, then the peers of `family` (the asker's;
/// BEP 15 has no room for the other family), compact.
pub fn announce_reply(
    tid: u32,
    interval: u32,
    counts: Counts,
    family: Family,
    peers: impl ExactSizeIterator<Item = SocketAddr>,
) -> Vec<u8> {
    let mut out = reply_header(Action::Announce, tid, 12 + peers.len() * family.stride());
    out.extend_from_slice(&interval.to_be_bytes());
    out.extend_from_slice(&count32(counts.incomplete));
    out.extend_from_slice(&count32(counts.complete));
    for addr in peers.filter(|a| Family::of(a.ip()) == family) {
        write_compact(&mut out, &addr);
    }
    out
}

/// The reply to a scrape: seeders, completed, leechers per hash asked, in order.
pub fn scrape_reply(tid: u32, counts: &[Counts]) -> Vec<u8> {
    let mut out = reply_header(Action::Scrape, tid, 12 * counts.len());
    for c in counts {
        out.extend_from_slice(&count32(c.complete));
        out.extend_from_slice(&count32(c.downloaded));
        out.extend_from_slice(&count32(c.incomplete));
    }
    out
}

/// An error reply with a message.
pub fn error_reply(tid: u32, why: &str) -> Vec<u8> {
    let mut out = reply_header(Action::Error, tid, why.len());
    out.extend_from_slice(why.as_bytes());
    out
}
