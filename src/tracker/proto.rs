//! The tracker protocol's vocabulary, shared by the client (`tracker`) and the server
//! (`tracker_server`), pure: the announce [`Event`] in its HTTP and UDP forms, compact peers
//! (BEP 23's 6 bytes, BEP 7's 18), the BEP 15 datagram header, actions and request decoder with its
//! reply encoders, and the bencoded HTTP replies (announce, BEP 48 scrape, `failure reason`), written
//! through [`crate::bencode`]'s streaming writer.
//!
//! Each side keeps its own policy: the client encodes its requests (`tracker::udp`, `tracker::http`)
//! and decodes replies; the server decodes requests and picks what a reply says. What goes over the
//! wire is defined here once, and the tests hold the client's decoders to these encoders.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::bencode::{put_bytes, put_uint};
use crate::types::{InfoHash, PeerId};

/// The `event` of an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A regular re-announce (also BEP 21's `paused`).
    None,
    /// The first announce of a session.
    Started,
    /// The download just finished.
    Completed,
    /// The peer leaves the swarm.
    Stopped,
}

impl Event {
    /// The HTTP `event` value (`None` is sent as no parameter).
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Event::None => None,
            Event::Started => Some("started"),
            Event::Completed => Some("completed"),
            Event::Stopped => Some("stopped"),
        }
    }

    /// Reads an HTTP `event` value: empty, `empty` and BEP 21's `paused` are regular announces;
    /// anything else unknown is `None` (the caller refuses it).
    pub fn from_query(v: &[u8]) -> Option<Event> {
        match v {
            b"started" => Some(Event::Started),
            b"completed" => Some(Event::Completed),
            b"stopped" => Some(Event::Stopped),
            b"" | b"paused" | b"empty" => Some(Event::None),
            _ => None,
        }
    }

    /// The BEP 15 code: 0 none, 1 completed, 2 started, 3 stopped.
    pub fn udp_code(self) -> u32 {
        match self {
            Event::None => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        }
    }

    /// Reads a BEP 15 code; an unknown one is a regular announce.
    pub fn from_udp_code(code: u32) -> Event {
        match code {
            1 => Event::Completed,
            2 => Event::Started,
            3 => Event::Stopped,
            _ => Event::None,
        }
    }
}

/// A torrent's figures, as announce and scrape replies carry them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Seeders.
    pub complete: u64,
    /// Leechers.
    pub incomplete: u64,
    /// Completed downloads (BEP 48's `downloaded`).
    pub downloaded: u64,
}

/// Which compact peer form: BEP 23's 6 bytes or BEP 7's 18.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// 4 address bytes and the port.
    V4,
    /// 16 address bytes and the port.
    V6,
}

impl Family {
    /// Bytes per peer.
    pub fn stride(self) -> usize {
        match self {
            Family::V4 => 6,
            Family::V6 => 18,
        }
    }

    /// The family of `ip` as written (an IPv4-mapped IPv6 address is V6).
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// Appends `addr` in compact form: the address bytes of its family, then the port, big-endian.
pub fn write_compact(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Appends compact peers of `family` to `out` while it holds fewer than `limit`. Port 0 is skipped. A
/// trailing partial entry (a length that is not a multiple of the stride) is ignored and the whole
/// entries kept, as libtorrent does: a tracker that appends a stray byte still gives us its peers.
pub fn read_compact(bytes: &[u8], family: Family, limit: usize, out: &mut Vec<SocketAddr>) {
    for chunk in bytes.chunks_exact(family.stride()) {
        if out.len() >= limit {
            break;
        }
        let (ip, port) = chunk.split_at(chunk.len() - 2);
        let port = u16::from_be_bytes([port[0], port[1]]);
        let ip = match (<[u8; 4]>::try_from(ip), <[u8; 16]>::try_from(ip)) {
            (Ok(v4), _) => IpAddr::V4(Ipv4Addr::from(v4)),
            (_, Ok(v6)) => IpAddr::V6(Ipv6Addr::from(v6)),
            _ => continue,
        };
        if port != 0 {
            out.push(SocketAddr::new(ip, port));
        }
    }
}

/// The head of an HTTP announce reply: everything but the peers.
#[derive(Debug, Clone, Copy)]
pub struct AnnounceHead {
    /// `interval`, seconds.
    pub interval: u32,
    /// `min interval`, seconds.
    pub min_interval: u32,
    /// `complete` and `incomplete` (`downloaded` is not part of an announce reply).
    pub counts: Counts,
    /// Compact `peers`/`peers6` (BEP 23, BEP 7); otherwise a list of dictionaries.
    pub compact: bool,
    /// Leave `peer id` out of the dictionary form.
    pub no_peer_id: bool,
}

/// An HTTP announce reply: keys in sorted order; compact IPv4 peers in `peers` and IPv6 in `peers6`
/// (written only when there are some), or one `ip`/`peer id`/`port` dictionary per peer.
pub fn announce_reply<'p>(
    head: &AnnounceHead,
    peers: impl ExactSizeIterator<Item = (SocketAddr, &'p PeerId)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + peers.len() * 24);
    out.push(b'd');
    put_bytes(&mut out, b"complete");
    put_uint(&mut out, head.counts.complete);
    put_bytes(&mut out, b"incomplete");
    put_uint(&mut out, head.counts.incomplete);
    put_bytes(&mut out, b"interval");
    put_uint(&mut out, u64::from(head.interval));
    put_bytes(&mut out, b"min interval");
    put_uint(&mut out, u64::from(head.min_interval));
    put_bytes(&mut out, b"peers");
    if head.compact {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (addr, _) in peers {
            match Family::of(addr.ip()) {
                Family::V4 => write_compact(&mut v4, &addr),
                Family::V6 => write_compact(&mut v6, &addr),
            }
        }
        put_bytes(&mut out, &v4);
        if !v6.is_empty() {
            put_bytes(&mut out, b"peers6");
            put_bytes(&mut out, &v6);
        }
    } else {
        out.push(b'l');
        for (addr, id) in peers {
            out.push(b'd');
            put_bytes(&mut out, b"ip");
            put_bytes(&mut out, addr.ip().to_string().as_bytes());
            if !head.no_peer_id {
                put_bytes(&mut out, b"peer id");
                put_bytes(&mut out, &id.0);
            }
            put_bytes(&mut out, b"port");
            put_uint(&mut out, u64::from(addr.port()));
            out.push(b'e');
        }
        out.push(b'e');
    }
    out.push(b'e');
    out
}

/// An HTTP scrape reply (BEP 48): `files` keyed by raw info-hash, sorted here.
pub fn scrape_reply(files: &[(InfoHash, Counts)]) -> Vec<u8> {
    let mut sorted: Vec<&(InfoHash, Counts)> = files.iter().collect();
    sorted.sort_by_key(|f| f.0);
    let mut out = Vec::with_capacity(16 + files.len() * 80);
    out.extend_from_slice(b"d5:filesd");
    for (hash, c) in sorted {
        put_bytes(&mut out, &hash.0);
        out.push(b'd');
        put_bytes(&mut out, b"complete");
        put_uint(&mut out, c.complete);
        put_bytes(&mut out, b"downloaded");
        put_uint(&mut out, c.downloaded);
        put_bytes(&mut out, b"incomplete");
        put_uint(&mut out, c.incomplete);
        out.push(b'e');
    }
    out.extend_from_slice(b"ee");
    out
}

/// An HTTP refusal: `d14:failure reason…e`.
pub fn failure_reply(reason: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + reason.len());
    out.push(b'd');
    put_bytes(&mut out, b"failure reason");
    put_bytes(&mut out, reason.as_bytes());
    out.push(b'e');
    out
}

pub mod udp;

#[cfg(test)]
mod tests;
