//! Unit tests of the BEP 15 codec, and of the client against a scripted UDP tracker on 127.0.0.1.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;
use crate::tracker::Event;
use crate::types::PeerId;

fn req() -> AnnounceRequest {
    AnnounceRequest {
        info_hash: InfoHash([0x11; 20]),
        peer_id: PeerId(*b"-PX0100-abcdefghijkl"),
        port: 6881,
        uploaded: 3,
        downloaded: 2,
        left: 1,
        event: Event::Started,
        numwant: None,
        key: 7,
        tracker_id: None,
    }
}

#[test]
fn request_layouts() {
    let c = encode_connect(0x01020304);
    assert_eq!(
        c,
        [0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4]
    );
    let a = encode_announce(0xAABB, 9, &req());
    assert_eq!(a.len(), 98);
    assert_eq!(&a[0..8], &0xAABBu64.to_be_bytes());
    assert_eq!(be32(&a, 8), Some(1));
    assert_eq!(be32(&a, 12), Some(9));
    assert_eq!(&a[16..36], &[0x11; 20]);
    assert_eq!(&a[36..56], b"-PX0100-abcdefghijkl");
    assert_eq!(&a[56..64], &2u64.to_be_bytes()); // downloaded
    assert_eq!(&a[64..72], &1u64.to_be_bytes()); // left
    assert_eq!(&a[72..80], &3u64.to_be_bytes()); // uploaded
    assert_eq!(be32(&a, 80), Some(2)); // started
    assert_eq!(be32(&a, 88), Some(7)); // key
    assert_eq!(&a[92..96], &(-1i32).to_be_bytes()); // numwant default
    assert_eq!(&a[96..98], &6881u16.to_be_bytes());
    let hashes = vec![InfoHash([1; 20]); 100];
    assert_eq!(
        encode_scrape(1, 2, &hashes).len(),
        16 + 20 * MAX_SCRAPE_HASHES
    );
}

fn head(action: u32, tid: u32) -> Vec<u8> {
    let mut v = action.to_be_bytes().to_vec();
    v.extend_from_slice(&tid.to_be_bytes());
    v
}

#[test]
fn reply_parsing() {
    // Not ours: short, or another transaction.
    assert_eq!(
        parse_reply(&[0; 7], 1, Action::Connect, false).unwrap(),
        None
    );
    assert_eq!(
        parse_reply(&head(0, 2), 1, Action::Connect, false).unwrap(),
        None
    );
    // Connect.
    let mut c = head(0, 1);
    c.extend_from_slice(&42u64.to_be_bytes());
    assert_eq!(
        parse_reply(&c, 1, Action::Connect, false).unwrap(),
        Some(Reply::Connect(42))
    );
    assert!(matches!(
        parse_reply(&c[..12], 1, Action::Connect, false),
        Err(TrackerError::Malformed(_))
    ));
    // Announce with two v4 peers, one with port 0.
    let mut a = head(1, 5);
    for w in [1800u32, 3, 4] {
        a.extend_from_slice(&w.to_be_bytes());
    }
    a.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1, 1, 2, 3, 4, 0, 0]);
    let Some(Reply::Announce(r)) = parse_reply(&a, 5, Action::Announce, false).unwrap() else {
        panic!()
    };
    assert_eq!(
        (r.interval, r.leechers, r.seeders),
        (Some(1800), Some(3), Some(4))
    );
    assert_eq!(r.peers, ["127.0.0.1:6881".parse().unwrap()]);
    // The same 12 peer bytes are not a whole IPv6 peer: no peer, but the counts are kept.
    let Some(Reply::Announce(r)) = parse_reply(&a, 5, Action::Announce, true).unwrap() else {
        panic!()
    };
    assert!(r.peers.is_empty());
    assert_eq!(r.interval, Some(1800));
    // A stray byte after whole peers: the peers are kept.
    let mut tail = a.clone();
    tail.push(9);
    let Some(Reply::Announce(r)) = parse_reply(&tail, 5, Action::Announce, false).unwrap() else {
        panic!()
    };
    assert_eq!(r.peers, ["127.0.0.1:6881".parse().unwrap()]);
    assert!(parse_reply(&a[..19], 5, Action::Announce, false).is_err());
    let empty = parse_reply(&a[..8], 5, Action::Announce, false).unwrap_err();
    assert!(
        empty.to_string().contains("may not track this torrent"),
        "{empty}"
    );
    // Wrong action for the transaction.
    assert!(matches!(
        parse_reply(&a, 5, Action::Scrape, false),
        Err(TrackerError::Malformed(_))
    ));
    // Error action, text sanitised.
    let mut e = head(3, 8);
    e.extend_from_slice(b"bad\x1b hash");
    assert_eq!(
        parse_reply(&e, 8, Action::Announce, false).unwrap(),
        Some(Reply::Error("bad? hash".into()))
    );
    // Scrape: seeders, completed, leechers per hash.
    let mut s = head(2, 9);
    for w in [5u32, 6, 7] {
        s.extend_from_slice(&w.to_be_bytes());
    }
    assert_eq!(
        parse_reply(&s, 9, Action::Scrape, false).unwrap(),
        Some(Reply::Scrape(vec![ScrapeStats {
            complete: 5,
            downloaded: 6,
            incomplete: 7
        }]))
    );
}

#[test]
fn url_rules() {
    assert!(UdpTracker::new("udp://tracker.example:1337/announce").is_ok());
    assert!(UdpTracker::new("udp://[::1]:1337").is_ok());
    assert!(matches!(
        UdpTracker::new("udp://tracker.example/announce"),
        Err(TrackerError::BadUrl(_))
    ));
    assert!(matches!(
        UdpTracker::new("udp://:80"),
        Err(TrackerError::BadUrl(_))
    ));
}

fn fast() -> TrackerConfig {
    TrackerConfig {
        udp_base_timeout: Duration::from_millis(100),
        udp_max_retries: 2,
        ..TrackerConfig::default()
    }
}

/// A scripted tracker: drops the first datagram, sends a stray reply before each real one, counts connects.
async fn scripted(
    error_on_announce: bool,
) -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let url = format!("udp://{}/announce", sock.local_addr().unwrap());
    let connects = Arc::new(AtomicUsize::new(0));
    let counter = connects.clone();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        let mut seen = 0;
        // Bounded: the test's requests, never more.
        while seen < 12 {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            seen += 1;
            if seen == 1 {
                continue; // lost packet: the client must retransmit
            }
            let (Some(action), Some(tid)) = (be32(&buf, 8), be32(&buf, 12)) else {
                continue; // not a request: ignore it
            };
            let mut stray = head(action, tid.wrapping_add(1));
            stray.extend_from_slice(&[0; 12]);
            let _ = sock.send_to(&stray, from).await;
            let mut reply;
            if n == 16 && u64::from_be_bytes(buf[..8].try_into().unwrap()) == PROTOCOL_ID {
                counter.fetch_add(1, Ordering::SeqCst);
                reply = head(0, tid);
                reply.extend_from_slice(&0x5555u64.to_be_bytes());
            } else if error_on_announce {
                reply = head(3, tid);
                reply.extend_from_slice(b"unregistered torrent");
            } else {
                assert_eq!(&buf[..8], &0x5555u64.to_be_bytes(), "connection id echoed");
                reply = head(1, tid);
                for w in [900u32, 1, 2] {
                    reply.extend_from_slice(&w.to_be_bytes());
                }
                reply.extend_from_slice(&[10, 0, 0, 1, 0, 80]);
            }
            let _ = sock.send_to(&reply, from).await;
        }
    });
    (url, connects, task)
}

#[tokio::test]
async fn announce_retransmits_and_reuses_connection_id() {
    let (url, connects, task) = scripted(false).await;
    let tracker = UdpTracker::new(&url).unwrap();
    let r = tracker.announce(&fast(), &req()).await.unwrap();
    assert_eq!(
        (r.interval, r.leechers, r.seeders),
        (Some(900), Some(1), Some(2))
    );
    assert_eq!(r.peers, ["10.0.0.1:80".parse().unwrap()]);
    tracker.announce(&fast(), &req()).await.unwrap();
    assert_eq!(
        connects.load(Ordering::SeqCst),
        1,
        "the connection id is reused within its minute"
    );
    let stale = TrackerConfig {
        udp_connection_ttl: Duration::ZERO,
        ..fast()
    };
    tracker.announce(&stale, &req()).await.unwrap();
    assert_eq!(
        connects.load(Ordering::SeqCst),
        2,
        "a stale connection id is renewed"
    );
    task.abort();
}

#[tokio::test]
async fn error_action_is_the_tracker_message() {
    let (url, _, task) = scripted(true).await;
    let e = UdpTracker::new(&url)
        .unwrap()
        .announce(&fast(), &req())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "tracker refused: unregistered torrent");
    task.abort();
}

#[tokio::test]
async fn silent_and_closed_ports() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let url = format!("udp://{}", silent.local_addr().unwrap());
    let e = UdpTracker::new(&url)
        .unwrap()
        .announce(&fast(), &req())
        .await
        .unwrap_err();
    assert!(
        matches!(e, TrackerError::Timeout(d) if d >= Duration::from_millis(700)),
        "{e}"
    );

    let closed = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let e = UdpTracker::new(&format!("udp://{closed}"))
        .unwrap()
        .announce(&fast(), &req())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("connection refused"), "{e}");
}
