//! The server's HTTP replies (pure): what an announce reply says, from the store's answer, written by
//! the protocol's one bencoded writer ([`crate::tracker::proto`]: BEP 3 announce, compact BEP 23 with
//! `peers6` per BEP 7 or the dictionary form for `compact=0`, BEP 48 scrape, `failure reason`).

use super::store::Counts;
use super::swarm::Peer;
use crate::tracker::proto::{self, AnnounceHead};
use crate::types::InfoHash;

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
    let head = AnnounceHead {
        interval: r.interval,
        min_interval: r.min_interval,
        counts: r.counts,
        compact: r.compact,
        no_peer_id: r.no_peer_id,
    };
    proto::announce_reply(&head, r.peers.iter().map(|p| (p.addr, &p.id)))
}

/// The scrape reply, `files` keyed by info-hash (sorted by the writer).
pub fn scrape(files: &[(InfoHash, Counts)]) -> Vec<u8> {
    proto::scrape_reply(files)
}

/// `d14:failure reason…e`.
pub fn failure(reason: &str) -> Vec<u8> {
    proto::failure_reply(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::{decode, Limits};
    use crate::tracker::http::{parse_announce as parse_announce_reply, parse_scrape};
    use crate::types::PeerId;

    fn peers() -> Vec<Peer> {
        vec![
            Peer {
                id: PeerId([b'a'; 20]),
                addr: "10.0.0.1:6881".parse().unwrap(),
                seeder: true,
            },
            Peer {
                id: PeerId([b'b'; 20]),
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
        let body = scrape(&[(InfoHash([2; 20]), c), (InfoHash([1; 20]), c)]);
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
