//! Unit tests of the protocol vocabulary: every event both ways, compact peers both ways, and the
//! server's encoders read back by the client's decoders (HTTP and UDP), and the client's UDP
//! requests read back by the server's decoder.

use std::net::SocketAddr;

use super::udp::{self, Action, AnnounceFields, Refused, Request, PROTOCOL_ID};
use super::*;
use crate::bencode::{decode, Limits};
use crate::tracker::http::{parse_announce, parse_scrape};
use crate::tracker::udp::{encode_announce, encode_connect, encode_scrape, parse_reply, Reply};
use crate::tracker::{AnnounceRequest, ScrapeStats, TrackerError, MAX_PEERS_PER_REPLY};

const EVENTS: [Event; 4] = [
    Event::None,
    Event::Started,
    Event::Completed,
    Event::Stopped,
];

fn addrs() -> Vec<SocketAddr> {
    [
        "10.0.0.1:6881",
        "[2001:db8::1]:51413",
        "192.168.1.200:1",
        "[::ffff:10.1.2.3]:65535",
        "255.255.255.255:443",
        "[::1]:80",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

fn counts(complete: u64, incomplete: u64, downloaded: u64) -> Counts {
    Counts {
        complete,
        incomplete,
        downloaded,
    }
}

#[test]
fn events_round_trip_in_both_forms() {
    for e in EVENTS {
        let text = e.as_str().unwrap_or("");
        assert_eq!(Event::from_query(text.as_bytes()), Some(e), "{e:?}");
        assert_eq!(Event::from_udp_code(e.udp_code()), e, "{e:?}");
    }
    let codes: Vec<u32> = EVENTS.iter().map(|e| e.udp_code()).collect();
    assert_eq!(
        codes,
        [0, 2, 1, 3],
        "BEP 15: none, started, completed, stopped"
    );
    assert_eq!(Event::None.as_str(), None, "sent as no parameter");
    assert_eq!(Event::Started.as_str(), Some("started"));
    assert_eq!(Event::Completed.as_str(), Some("completed"));
    assert_eq!(Event::Stopped.as_str(), Some("stopped"));
    // BEP 21's `paused` and `empty` are regular announces; anything else is refused.
    assert_eq!(Event::from_query(b"paused"), Some(Event::None));
    assert_eq!(Event::from_query(b"empty"), Some(Event::None));
    for junk in [&b"bogus"[..], b"Started", b"started ", b"\xff"] {
        assert_eq!(Event::from_query(junk), None);
    }
    // An unknown UDP code is a regular announce, as opentracker reads it.
    assert_eq!(Event::from_udp_code(4), Event::None);
    assert_eq!(Event::from_udp_code(u32::MAX), Event::None);
}

#[test]
fn compact_peers_round_trip_per_family() {
    let all = addrs();
    for family in [Family::V4, Family::V6] {
        let mine: Vec<SocketAddr> = all
            .iter()
            .copied()
            .filter(|a| Family::of(a.ip()) == family)
            .collect();
        let mut bytes = Vec::new();
        mine.iter().for_each(|a| write_compact(&mut bytes, a));
        assert_eq!(bytes.len(), mine.len() * family.stride());
        let mut back = Vec::new();
        read_compact(&bytes, family, usize::MAX, &mut back);
        assert_eq!(back, mine, "{family:?}");
    }
    let mut b = Vec::new();
    write_compact(&mut b, &"1.2.3.4:258".parse().unwrap());
    assert_eq!(b, [1, 2, 3, 4, 1, 2]);
    // The IPv4-mapped form is an IPv6 address as written.
    assert_eq!(Family::of("::ffff:1.2.3.4".parse().unwrap()), Family::V6);
}

#[test]
fn compact_reading_skips_port_zero_keeps_whole_entries_and_stops_at_the_limit() {
    let bytes = [1, 1, 1, 1, 0, 0, 2, 2, 2, 2, 0, 7, 3, 3, 3];
    let mut out = Vec::new();
    read_compact(&bytes, Family::V4, 10, &mut out);
    assert_eq!(out, ["2.2.2.2:7".parse().unwrap()]);
    // The limit counts what `out` already holds.
    let many: Vec<u8> = (1..=50u8).flat_map(|n| [10, 0, 0, n, 0, n]).collect();
    let mut out = vec!["9.9.9.9:9".parse().unwrap()];
    read_compact(&many, Family::V4, 20, &mut out);
    assert_eq!(out.len(), 20);
    assert_eq!(out[1], "10.0.0.1:1".parse().unwrap());
    // Six bytes read as IPv6 are a partial entry: nothing.
    let mut out = Vec::new();
    read_compact(&many[..6], Family::V6, 10, &mut out);
    assert!(out.is_empty());
    read_compact(&[], Family::V4, 10, &mut out);
    assert!(out.is_empty());
}

fn head(compact: bool, no_peer_id: bool) -> AnnounceHead {
    AnnounceHead {
        interval: 1800,
        min_interval: 900,
        counts: counts(3, 4, 99),
        compact,
        no_peer_id,
    }
}

fn ids(n: usize) -> Vec<PeerId> {
    (0..n).map(|i| PeerId([b'a' + i as u8; 20])).collect()
}

#[test]
fn http_announce_reply_is_read_back_by_the_client_in_both_forms() {
    let peers = addrs();
    let ids = ids(peers.len());
    let pairs = || peers.iter().copied().zip(ids.iter());
    for (compact, no_peer_id) in [(true, false), (false, false), (false, true)] {
        let body = announce_reply(&head(compact, no_peer_id), pairs());
        let doc = decode(&body, Limits::TRACKER_REPLY).unwrap();
        assert!(doc.root().keys_sorted(), "keys in bencode order");
        let r = parse_announce(&body).unwrap();
        assert_eq!((r.interval, r.min_interval), (Some(1800), Some(900)));
        assert_eq!((r.seeders, r.leechers), (Some(3), Some(4)));
        let mut got = r.peers.clone();
        let mut want = peers.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "compact {compact}");
        let has_ids = body.windows(7).any(|w| w == b"peer id");
        assert_eq!(has_ids, !compact && !no_peer_id);
        assert_eq!(doc.root().get(b"peers6").is_some(), compact);
    }
    let body = announce_reply(&head(true, false), pairs());
    assert!(body.starts_with(
        b"d8:completei3e10:incompletei4e8:intervali1800e12:min intervali900e5:peers18:"
    ));
    // In the dictionary form each peer carries its own id.
    let body = announce_reply(&head(false, false), pairs().take(1));
    assert!(body.ends_with(b"d2:ip8:10.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881eeee"));
}

#[test]
fn http_announce_reply_without_peers_or_without_ipv6() {
    let none = announce_reply(&head(true, false), std::iter::empty());
    assert!(none.ends_with(b"5:peers0:e"));
    assert!(parse_announce(&none).unwrap().peers.is_empty());
    let dict = announce_reply(&head(false, false), std::iter::empty());
    assert!(dict.ends_with(b"5:peerslee"));
    let v4 = ["1.2.3.4:5".parse().unwrap()];
    let id = PeerId([0; 20]);
    let body = announce_reply(&head(true, false), v4.iter().map(|a| (*a, &id)));
    assert!(
        !body.windows(8).any(|w| w == b"6:peers6"),
        "no empty peers6"
    );
    assert_eq!(parse_announce(&body).unwrap().peers, v4);
}

#[test]
fn http_reply_with_more_peers_than_the_client_keeps() {
    let peers: Vec<SocketAddr> = (0..MAX_PEERS_PER_REPLY as u32 + 50)
        .map(|n| SocketAddr::from((n.to_be_bytes(), 1)))
        .collect();
    let id = PeerId([1; 20]);
    let body = announce_reply(&head(true, false), peers.iter().map(|a| (*a, &id)));
    let r = parse_announce(&body).unwrap();
    assert_eq!(r.peers, peers[..MAX_PEERS_PER_REPLY]);
}

#[test]
fn http_scrape_reply_is_sorted_and_read_back() {
    let files = [
        (InfoHash([9; 20]), counts(1, 2, 3)),
        (InfoHash([0; 20]), counts(0, 0, 0)),
        (InfoHash([5; 20]), counts(u64::from(u32::MAX), 7, 8)),
    ];
    let body = scrape_reply(&files);
    assert!(decode(&body, Limits::TRACKER_REPLY)
        .unwrap()
        .root()
        .keys_sorted());
    let read = parse_scrape(&body).unwrap();
    assert_eq!(read.len(), 3);
    for (hash, c) in files {
        let want = ScrapeStats {
            complete: c.complete as u32,
            downloaded: c.downloaded as u32,
            incomplete: c.incomplete as u32,
        };
        assert_eq!(read[&hash], want, "{hash}");
    }
    assert_eq!(scrape_reply(&[]), b"d5:filesdee");
}

#[test]
fn http_failure_is_read_back_as_the_reason() {
    assert_eq!(
        failure_reply("missing port"),
        b"d14:failure reason12:missing porte"
    );
    for reason in ["", "torrent not on this tracker's whitelist", "é: 1e"] {
        match parse_announce(&failure_reply(reason)) {
            Err(TrackerError::Failure(got)) => assert_eq!(got, reason),
            other => panic!("{reason:?}: {other:?}"),
        }
        assert!(matches!(
            parse_scrape(&failure_reply(reason)),
            Err(TrackerError::Failure(_))
        ));
    }
}

fn client_announce(event: Event, numwant: Option<u32>) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: InfoHash([0x11; 20]),
        peer_id: PeerId(*b"-PX0100-abcdefghijkl"),
        port: 6881,
        uploaded: u64::MAX,
        downloaded: 1 << 40,
        left: 0,
        event,
        numwant,
        key: 0xdead_beef,
        tracker_id: None,
    }
}

#[test]
fn udp_requests_of_the_client_are_read_back_by_the_server_decoder() {
    assert_eq!(
        udp::decode_request(&encode_connect(7), 74),
        Ok(Request::Connect { tid: 7 })
    );
    for (event, numwant, wire_numwant) in [
        (Event::None, None, -1),
        (Event::Started, Some(30), 30),
        (Event::Completed, Some(u32::MAX), i32::MAX),
        (Event::Stopped, Some(0), 0),
    ] {
        let req = client_announce(event, numwant);
        let got = udp::decode_request(&encode_announce(55, 8, &req), 74);
        let want = AnnounceFields {
            info_hash: req.info_hash,
            peer_id: req.peer_id,
            downloaded: req.downloaded,
            left: req.left,
            uploaded: req.uploaded,
            event,
            ip: None,
            key: req.key,
            numwant: wire_numwant,
            port: 6881,
        };
        let a = want.clone();
        assert_eq!(
            got,
            Ok(Request::Announce {
                conn: 55,
                tid: 8,
                a
            })
        );
    }
    let hashes: Vec<InfoHash> = (0..100u8).map(|n| InfoHash([n; 20])).collect();
    let Ok(Request::Scrape {
        conn,
        tid,
        hashes: got,
    }) = udp::decode_request(&encode_scrape(1, 2, &hashes), 1000)
    else {
        panic!("not a scrape");
    };
    assert_eq!((conn, tid), (1, 2));
    assert_eq!(got, hashes[..crate::tracker::udp::MAX_SCRAPE_HASHES]);
    // The server's own bound applies too.
    let Ok(Request::Scrape { hashes: got, .. }) =
        udp::decode_request(&encode_scrape(1, 2, &hashes), 3)
    else {
        panic!("not a scrape");
    };
    assert_eq!(got, hashes[..3]);
}

#[test]
fn udp_announce_ip_field_is_read() {
    let mut a = encode_announce(1, 2, &client_announce(Event::None, None));
    a[84..88].copy_from_slice(&[10, 1, 2, 3]);
    let Ok(Request::Announce { a, .. }) = udp::decode_request(&a, 74) else {
        panic!("not an announce");
    };
    assert_eq!(a.ip, Some(std::net::Ipv4Addr::new(10, 1, 2, 3)));
}

#[test]
fn udp_junk_is_refused_with_or_without_a_reply() {
    let refused = |tid, why| Err(Refused { tid, why });
    for len in 0..16 {
        assert_eq!(
            udp::decode_request(&vec![0; len], 74),
            refused(None, "short packet")
        );
    }
    let mut magic = encode_connect(1);
    magic[7] ^= 1;
    assert_eq!(
        udp::decode_request(&magic, 74),
        refused(None, "bad protocol id")
    );
    let announce = encode_announce(1, 9, &client_announce(Event::None, None));
    for len in [16, 20, 97] {
        assert_eq!(
            udp::decode_request(&announce[..len], 74),
            refused(Some(9), "short announce"),
            "{len} bytes"
        );
    }
    let mut scrape = udp::request_header(1, Action::Scrape, 4, 0);
    assert_eq!(
        udp::decode_request(&scrape, 74),
        refused(Some(4), "scrape without info_hash")
    );
    scrape.extend_from_slice(&[0; 19]);
    assert_eq!(
        udp::decode_request(&scrape, 74),
        refused(Some(4), "scrape without info_hash")
    );
    for action in [Action::Error.code(), 4, u32::MAX] {
        let mut d = udp::request_header(1, Action::Connect, 5, 0);
        d[8..12].copy_from_slice(&action.to_be_bytes());
        assert_eq!(
            udp::decode_request(&d, 74),
            refused(Some(5), "unknown action")
        );
    }
}

#[test]
fn udp_header_and_readers() {
    assert_eq!(
        PROTOCOL_ID.to_be_bytes(),
        [0, 0, 4, 0x17, 0x27, 0x10, 0x19, 0x80]
    );
    for a in [
        Action::Connect,
        Action::Announce,
        Action::Scrape,
        Action::Error,
    ] {
        assert_eq!(Action::from_code(a.code()), Some(a));
    }
    assert_eq!(Action::from_code(4), None);
    let h = udp::request_header(0x0102_0304_0506_0708, Action::Scrape, 0x0a0b_0c0d, 0);
    assert_eq!(h, [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 2, 10, 11, 12, 13]);
    assert_eq!(
        udp::reply_header(Action::Error, 1, 0),
        [0, 0, 0, 3, 0, 0, 0, 1]
    );
    assert_eq!(udp::be64(&h, 0), Some(0x0102_0304_0506_0708));
    assert_eq!(udp::be32(&h, 12), Some(0x0a0b_0c0d));
    assert_eq!(udp::be32(&h, 13), None);
    assert_eq!(udp::be64(&h, 9), None);
    assert_eq!(udp::be32(&h, usize::MAX), None, "no overflow");
    assert_eq!(udp::id20(&[7; 20], 0), Some([7; 20]));
    assert_eq!(udp::id20(&[7; 20], 1), None);
}

#[test]
fn udp_replies_of_the_server_are_read_back_by_the_client() {
    assert_eq!(
        parse_reply(&udp::connect_reply(3, 0xfeed), 3, Action::Connect, false).unwrap(),
        Some(Reply::Connect(0xfeed))
    );
    let peers = addrs();
    for (family, ipv6) in [(Family::V4, false), (Family::V6, true)] {
        let c = counts(5, 6, 7);
        let d = udp::announce_reply(4, 1800, c, family, peers.iter().copied());
        let Some(Reply::Announce(r)) = parse_reply(&d, 4, Action::Announce, ipv6).unwrap() else {
            panic!("not an announce reply");
        };
        assert_eq!(
            (r.interval, r.seeders, r.leechers),
            (Some(1800), Some(5), Some(6))
        );
        let want: Vec<SocketAddr> = peers
            .iter()
            .copied()
            .filter(|a| Family::of(a.ip()) == family)
            .collect();
        assert_eq!(r.peers, want, "only the asker's family");
    }
    let c = [counts(1, 2, 3), counts(u64::MAX, 0, 9)];
    let d = udp::scrape_reply(6, &c);
    let stats = |complete, downloaded, incomplete| ScrapeStats {
        complete,
        downloaded,
        incomplete,
    };
    assert_eq!(
        parse_reply(&d, 6, Action::Scrape, false).unwrap(),
        Some(Reply::Scrape(vec![stats(1, 3, 2), stats(u32::MAX, 9, 0)])),
        "counts past 32 bits saturate"
    );
    for action in [Action::Connect, Action::Announce, Action::Scrape] {
        assert_eq!(
            parse_reply(
                &udp::error_reply(8, "invalid connection id"),
                8,
                action,
                false
            )
            .unwrap(),
            Some(Reply::Error("invalid connection id".into()))
        );
    }
    // Another transaction's reply is not ours.
    assert_eq!(
        parse_reply(&udp::connect_reply(3, 1), 4, Action::Connect, false).unwrap(),
        None
    );
}
