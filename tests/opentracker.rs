//! The tracker client against Debian's opentracker on 127.0.0.1: HTTP and UDP announces see each
//! other's peers, `stopped` removes a peer, scrape counts match, and a hash off the whitelist is refused.

mod common;

use std::time::Duration;

use pixtorrent::tracker::{AnnounceRequest, Event, TrackerClient, TrackerConfig, TrackerError};
use pixtorrent::types::{InfoHash, PeerId};

fn request(hash: InfoHash, id: u8, port: u16, left: u64, event: Event) -> AnnounceRequest {
    let mut peer_id = *b"-PX0100-000000000000";
    peer_id[19] = b'0' + id;
    AnnounceRequest {
        info_hash: hash,
        peer_id: PeerId(peer_id),
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event,
        numwant: Some(50),
        key: u32::from(id),
        tracker_id: None,
    }
}

fn client() -> TrackerClient {
    TrackerClient::new(TrackerConfig {
        http_timeout: Duration::from_secs(10),
        udp_base_timeout: Duration::from_secs(2),
        udp_max_retries: 2,
        ..TrackerConfig::default()
    })
    .unwrap()
}

/// A registers, B announces and gets A; A stops, B no longer gets A. Counts follow.
async fn two_peers_see_each_other(url: &str, hash: InfoHash) {
    let c = client();
    let a_addr = "127.0.0.1:7001".parse().unwrap();
    let a = c
        .announce(url, &request(hash, 1, 7001, 0, Event::Started))
        .await
        .unwrap();
    assert!(a.interval.is_some(), "{url}: interval");
    let b = c
        .announce(url, &request(hash, 2, 7002, 500, Event::Started))
        .await
        .unwrap();
    assert!(
        b.peers.contains(&a_addr),
        "{url}: B should get A, got {:?}",
        b.peers
    );
    assert_eq!(
        (b.seeders, b.leechers),
        (Some(1), Some(1)),
        "{url}: A seeds, B leeches"
    );

    let scrape = c.scrape(url, &[hash]).await.unwrap();
    let stats = scrape[&hash];
    assert_eq!((stats.complete, stats.incomplete), (1, 1), "{url}: scrape");

    c.announce(url, &request(hash, 1, 7001, 0, Event::Stopped))
        .await
        .unwrap();
    let b = c
        .announce(url, &request(hash, 2, 7002, 500, Event::None))
        .await
        .unwrap();
    assert!(
        !b.peers.contains(&a_addr),
        "{url}: A stopped, yet still listed: {:?}",
        b.peers
    );
    assert_eq!(b.seeders, Some(0), "{url}");
}

#[tokio::test]
async fn http_announce_and_scrape() {
    let hash = common::hash_for("http-swarm");
    let Some(ot) = common::Opentracker::start(&[hash]) else {
        return;
    };
    two_peers_see_each_other(&ot.http, hash).await;
}

#[tokio::test]
async fn udp_announce_and_scrape() {
    let hash = common::hash_for("udp-swarm");
    let Some(ot) = common::Opentracker::start(&[hash]) else {
        return;
    };
    two_peers_see_each_other(&ot.udp, hash).await;
}

#[tokio::test]
async fn http_and_udp_share_one_swarm() {
    let hash = common::hash_for("mixed-swarm");
    let Some(ot) = common::Opentracker::start(&[hash]) else {
        return;
    };
    let c = client();
    c.announce(&ot.udp, &request(hash, 1, 7101, 0, Event::Started))
        .await
        .unwrap();
    let r = c
        .announce(&ot.http, &request(hash, 2, 7102, 9, Event::Started))
        .await
        .unwrap();
    assert!(
        r.peers.contains(&"127.0.0.1:7101".parse().unwrap()),
        "{:?}",
        r.peers
    );
}

#[tokio::test]
async fn hash_off_the_whitelist_is_refused() {
    let listed = common::hash_for("listed");
    let Some(ot) = common::Opentracker::start(&[listed]) else {
        return;
    };
    let c = client();
    let other = common::hash_for("not-listed");
    let e = c
        .announce(&ot.http, &request(other, 1, 7201, 1, Event::Started))
        .await
        .unwrap_err();
    assert!(
        matches!(e, TrackerError::Failure(ref m) if m.contains("not authorized")),
        "{e}"
    );
    // Over UDP opentracker sends a bare 8-byte announce header instead of an error action.
    let e = c
        .announce(&ot.udp, &request(other, 1, 7201, 1, Event::Started))
        .await
        .unwrap_err();
    assert!(
        matches!(e, TrackerError::Malformed(ref m) if m.contains("may not track this torrent")),
        "{e}"
    );
}
