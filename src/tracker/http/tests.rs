//! Unit tests of the HTTP tracker codec: URLs, announce and scrape replies, hostile bodies.

use super::*;
use crate::bencode::Value;
use crate::tracker::Event;
use crate::types::PeerId;

fn req() -> AnnounceRequest {
    AnnounceRequest {
        info_hash: InfoHash(*b"\x00\x01 %&+/?=~\xff\x80ABCDEFGH"),
        peer_id: PeerId(*b"-PX0100-abcdefghijkl"),
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: Event::Started,
        numwant: Some(50),
        key: 0xdead_beef,
        tracker_id: None,
    }
}

#[test]
fn announce_url_encodes_raw_bytes() {
    let url = announce_url("http://t.example:8080/announce", &req()).unwrap();
    assert_eq!(
        url,
        "http://t.example:8080/announce?info_hash=%00%01%20%25%26%2B%2F%3F%3D~%FF%80ABCDEFGH\
         &peer_id=-PX0100-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3&compact=1&key=deadbeef\
         &event=started&numwant=50"
    );
}

#[test]
fn announce_url_keeps_existing_query_and_echoes_tracker_id() {
    let mut r = req();
    r.event = Event::None;
    r.numwant = None;
    r.tracker_id = Some(b"id 1".to_vec());
    let url = announce_url("https://t.example/a/announce.php?passkey=abc#frag", &r).unwrap();
    assert!(
        url.starts_with("https://t.example/a/announce.php?passkey=abc&info_hash="),
        "{url}"
    );
    assert!(url.ends_with("&trackerid=id%201"), "{url}");
    assert!(!url.contains("event=") && !url.contains('#'));
    assert!(matches!(
        announce_url("not a url", &r),
        Err(TrackerError::BadUrl(_))
    ));
    assert!(matches!(
        announce_url("ftp://x/announce", &r),
        Err(TrackerError::Unsupported(_))
    ));
}

#[test]
fn scrape_urls_follow_bep_48() {
    let cases = [
        (
            "http://example.com/announce",
            Some("http://example.com/scrape"),
        ),
        (
            "http://example.com/x/announce",
            Some("http://example.com/x/scrape"),
        ),
        (
            "http://example.com/announce.php",
            Some("http://example.com/scrape.php"),
        ),
        ("http://example.com/a", None),
        (
            "http://example.com/announce?x2%0644",
            Some("http://example.com/scrape?x2%0644"),
        ),
        (
            "http://example.com/announce?x=2/4",
            Some("http://example.com/scrape?x=2/4"),
        ),
        ("http://example.com/x%064announce", None),
        ("udp://example.com:80/announce", None),
        (
            "https://example.com/announce",
            Some("https://example.com/scrape"),
        ),
        ("nonsense", None),
    ];
    for (announce, scrape) in cases {
        assert_eq!(scrape_url(announce).as_deref(), scrape, "{announce}");
    }
}

fn reply(entries: Vec<(&str, Value)>) -> Vec<u8> {
    Value::dict(entries).encode()
}

#[test]
fn compact_and_ipv6_peers() {
    let mut v6 = vec![0u8; 15];
    v6.push(1);
    v6.extend_from_slice(&6882u16.to_be_bytes());
    let body = reply(vec![
        ("interval", Value::Int(1800)),
        ("min interval", Value::Int(900)),
        ("complete", Value::Int(5)),
        ("incomplete", Value::Int(7)),
        ("tracker id", Value::str("abc")),
        ("warning message", Value::str("be nice\x07")),
        (
            "peers",
            Value::Bytes(vec![127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 0]),
        ),
        ("peers6", Value::Bytes(v6)),
    ]);
    let r = parse_announce(&body).unwrap();
    assert_eq!(r.interval, Some(1800));
    assert_eq!(r.min_interval, Some(900));
    assert_eq!((r.seeders, r.leechers), (Some(5), Some(7)));
    assert_eq!(r.tracker_id.as_deref(), Some(&b"abc"[..]));
    assert_eq!(r.warning.as_deref(), Some("be nice?"));
    let peers: Vec<String> = r.peers.iter().map(|p| p.to_string()).collect();
    assert_eq!(peers, ["127.0.0.1:6881", "[::1]:6882"], "port 0 is skipped");
}

#[test]
fn dictionary_peers() {
    let peer = |ip: &str, port: i64| {
        Value::dict([
            ("ip", Value::str(ip)),
            ("port", Value::Int(port)),
            ("peer id", Value::str("x")),
        ])
    };
    let body = reply(vec![
        ("interval", Value::Int(60)),
        (
            "peers",
            Value::List(vec![
                peer("10.1.2.3", 51413),
                peer("::1", 1),
                peer("tracker.example", 5), // hostnames are not resolved
                peer("1.2.3.4", 70000),     // port out of range
                peer("1.2.3.4", 0),
                Value::Int(3),
            ]),
        ),
    ]);
    let r = parse_announce(&body).unwrap();
    let peers: Vec<String> = r.peers.iter().map(|p| p.to_string()).collect();
    assert_eq!(peers, ["10.1.2.3:51413", "[::1]:1"]);
    assert_eq!(r.seeders, None);
}

#[test]
fn peers_are_bounded() {
    let many = vec![1u8; 6 * (MAX_PEERS_PER_REPLY + 50)];
    let r = parse_announce(&reply(vec![("peers", Value::Bytes(many))])).unwrap();
    assert_eq!(r.peers.len(), MAX_PEERS_PER_REPLY);
}

#[test]
fn failures_and_garbage() {
    let e = parse_announce(&reply(vec![(
        "failure reason",
        Value::Bytes(b"go \x1b[2Jaway \xff".to_vec()),
    )]))
    .unwrap_err();
    assert_eq!(e.to_string(), "tracker refused: go ?[2Jaway \u{fffd}");
    let cases: [(&[u8], &str); 5] = [
        (b"", "empty body"),
        (b"  <!DOCTYPE html><html>", "HTML page"),
        (b"d8:intervali1800e5:peers6:abc", "not bencode"),
        (b"li1ee", "a bencoded list"),
        (b"d5:peersi3ee", "`peers` is a integer"),
    ];
    for (body, want) in cases {
        let e = parse_announce(body).unwrap_err();
        assert!(matches!(e, TrackerError::Malformed(_)), "{e}");
        assert!(e.to_string().contains(want), "{e} should contain {want}");
    }
    // A compact list with a stray tail keeps its whole entries (libtorrent does the same).
    let r = parse_announce(b"d5:peers7:\x7f\x00\x00\x01\x1a\xe1Z6:peers619:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe2Ze").unwrap();
    assert_eq!(
        r.peers,
        vec![
            "127.0.0.1:6881".parse::<SocketAddr>().unwrap(),
            "[::1]:6882".parse().unwrap()
        ]
    );
    let r = parse_announce(b"d5:peers5:abcdee").unwrap();
    assert!(r.peers.is_empty());
    // Negative or absurd counts are dropped, not wrapped.
    let r = parse_announce(&reply(vec![
        ("complete", Value::Int(-1)),
        ("interval", Value::Int(1 << 40)),
    ]))
    .unwrap();
    assert_eq!((r.seeders, r.interval), (None, None));
}

#[test]
fn scrape_replies() {
    let stats = Value::dict([
        ("complete", Value::Int(3)),
        ("downloaded", Value::Int(9)),
        ("incomplete", Value::Int(1)),
    ]);
    let body = Value::dict([(
        "files",
        Value::Dict(
            [(vec![0xaa; 20], stats), (b"short".to_vec(), Value::Int(1))]
                .into_iter()
                .collect(),
        ),
    )])
    .encode();
    let map = parse_scrape(&body).unwrap();
    assert_eq!(map.len(), 1);
    assert_eq!(
        map[&InfoHash([0xaa; 20])],
        ScrapeStats {
            complete: 3,
            downloaded: 9,
            incomplete: 1
        }
    );
    assert!(matches!(
        parse_scrape(b"de"),
        Err(TrackerError::Malformed(_))
    ));
    assert!(matches!(
        parse_scrape(&reply(vec![("failure reason", Value::str("no"))])),
        Err(TrackerError::Failure(_))
    ));
}
