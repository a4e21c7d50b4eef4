//! Bencoded HTTP tracker replies (pure): announce (BEP 3; compact BEP 23 with `peers6` per BEP 7, or
//! the dictionary form for `compact=0`), scrape (BEP 48), and `failure reason`. Keys are written in
//! sorted order, as bencoding requires.

use std::net::IpAddr;

use super::query::Id;
use super::store::Counts;
use super::swarm::Peer;

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    decimal(out, b.len() as u64);
    out.push(b':');
    out.extend_from_slice(b);
}

fn int(out: &mut Vec<u8>, n: u64) {
    out.push(b'i');
    decimal(out, n);
    out.push(b'e');
}

/// `n` in decimal, without the `String` that `to_string` allocates (a reply writes a dozen numbers).
fn decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// What an announce reply says.
#[derive(Debug, Clone)]
pub struct AnnounceReply<'a> {
    pub interval: u32,
    pub min_interval: u32,
    pub counts: Counts,
    pub peers: &'a [Peer],
    pub compact: bool,
    pub no_peer_id: bool,
}

/// The announce reply.
pub fn announce(r: &AnnounceReply) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + r.peers.len() * 24);
    out.push(b'd');
    bytes(&mut out, b"complete");
    int(&mut out, r.counts.complete);
    bytes(&mut out, b"incomplete");
    int(&mut out, r.counts.incomplete);
    bytes(&mut out, b"interval");
    int(&mut out, u64::from(r.interval));
    bytes(&mut out, b"min interval");
    int(&mut out, u64::from(r.min_interval));
    if r.compact {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for p in r.peers {
            match p.addr.ip() {
                IpAddr::V4(ip) => {
                    v4.extend_from_slice(&ip.octets());
                    v4.extend_from_slice(&p.addr.port().to_be_bytes());
                }
                IpAddr::V6(ip) => {
                    v6.extend_from_slice(&ip.octets());
                    v6.extend_from_slice(&p.addr.port().to_be_bytes());
                }
            }
        }
        bytes(&mut out, b"peers");
        bytes(&mut out, &v4);
        if !v6.is_empty() {
            bytes(&mut out, b"peers6");
            bytes(&mut out, &v6);
        }
    } else {
        bytes(&mut out, b"peers");
        out.push(b'l');
        for p in r.peers {
            out.push(b'd');
            bytes(&mut out, b"ip");
            bytes(&mut out, p.addr.ip().to_string().as_bytes());
            if !r.no_peer_id {
                bytes(&mut out, b"peer id");
                bytes(&mut out, &p.id);
            }
            bytes(&mut out, b"port");
            int(&mut out, u64::from(p.addr.port()));
            out.push(b'e');
        }
        out.push(b'e');
    }
    out.push(b'e');
    out
}

/// The scrape reply, `files` keyed by info-hash (sorted here).
pub fn scrape(files: &[(Id, Counts)]) -> Vec<u8> {
    let mut sorted: Vec<&(Id, Counts)> = files.iter().collect();
    sorted.sort_by_key(|f| f.0);
    let mut out = b"d5:filesd".to_vec();
    for (hash, c) in sorted {
        bytes(&mut out, hash);
        out.push(b'd');
        bytes(&mut out, b"complete");
        int(&mut out, c.complete);
        bytes(&mut out, b"downloaded");
        int(&mut out, c.downloaded);
        bytes(&mut out, b"incomplete");
        int(&mut out, c.incomplete);
        out.push(b'e');
    }
    out.extend_from_slice(b"ee");
    out
}

/// `d14:failure reason…e`.
pub fn failure(reason: &str) -> Vec<u8> {
    let mut out = b"d".to_vec();
    bytes(&mut out, b"failure reason");
    bytes(&mut out, reason.as_bytes());
    out.push(b'e');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_writes_every_width() {
        let mut n = 1u64;
        for _ in 0..20 {
            for v in [n - 1, n, n.saturating_add(7), u64::MAX] {
                let mut out = b"x".to_vec();
                decimal(&mut out, v);
                assert_eq!(out, format!("x{v}").into_bytes());
            }
            n = n.saturating_mul(10);
        }
    }
    use crate::bencode::{decode, Limits};
    use crate::tracker::http::{parse_announce as parse_announce_reply, parse_scrape};

    fn peers() -> Vec<Peer> {
        vec![
            Peer {
                id: [b'a'; 20],
                addr: "10.0.0.1:6881".parse().unwrap(),
                seeder: true,
            },
            Peer {
                id: [b'b'; 20],
                addr: "[2001:db8::1]:51413".parse().unwrap(),
                seeder: false,
            },
        ]
    }

    fn reply(peers: &[Peer], compact: bool, no_peer_id: bool) -> Vec<u8> {
        announce(&AnnounceReply {
            interval: 1800,
            min_interval: 900,
            counts: Counts {
                complete: 1,
                incomplete: 1,
                downloaded: 3,
            },
            peers,
            compact,
            no_peer_id,
        })
    }

    #[test]
    fn compact_reply_is_read_back_by_our_client_codec() {
        let p = peers();
        let body = reply(&p, true, false);
        let r = parse_announce_reply(&body).unwrap();
        assert_eq!(r.interval, Some(1800));
        assert_eq!((r.seeders, r.leechers), (Some(1), Some(1)));
        let got: Vec<_> = r.peers.iter().map(|p| p.to_string()).collect();
        assert_eq!(got, ["10.0.0.1:6881", "[2001:db8::1]:51413"]);
        assert!(body.starts_with(
            b"d8:completei1e10:incompletei1e8:intervali1800e12:min intervali900e5:peers6:"
        ));
    }

    #[test]
    fn dictionary_reply_with_and_without_peer_ids() {
        let p = peers();
        let body = reply(&p, false, false);
        let r = parse_announce_reply(&body).unwrap();
        assert_eq!(r.peers.len(), 2);
        assert!(body.windows(7).any(|w| w == b"peer id"));
        let body = reply(&p, false, true);
        assert!(!body.windows(7).any(|w| w == b"peer id"));
        assert!(decode(&body, Limits::TRACKER_REPLY).is_ok());
    }

    #[test]
    fn empty_swarm_has_empty_peers() {
        let body = reply(&[], true, false);
        assert!(body.ends_with(b"5:peers0:e"));
    }

    #[test]
    fn scrape_is_sorted_by_hash() {
        let c = Counts {
            complete: 2,
            incomplete: 3,
            downloaded: 4,
        };
        let body = scrape(&[([2; 20], c), ([1; 20], c)]);
        let first = body.windows(20).position(|w| w == [1; 20]).unwrap();
        let second = body.windows(20).position(|w| w == [2; 20]).unwrap();
        assert!(first < second);
        let read = parse_scrape(&body).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[&crate::types::InfoHash([1; 20])].downloaded, 4);
        assert_eq!(scrape(&[]), b"d5:filesdee");
    }

    #[test]
    fn failure_reason() {
        assert_eq!(
            failure("missing port"),
            b"d14:failure reason12:missing porte"
        );
        assert!(parse_announce_reply(&failure("nope")).is_err());
    }
}
