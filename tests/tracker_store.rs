//! One test suite for both swarm stores: the in-memory store, and the Redis store against a real
//! `redis-server` this test starts (random port, nothing persisted). The clock is a number the suite
//! advances, so expiry is tested without waiting.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;

use pixtorrent::tracker_server::memory::MemoryStore;
use pixtorrent::tracker_server::query::{Event, Id};
use pixtorrent::tracker_server::redis_store::RedisStore;
use pixtorrent::tracker_server::store::{AnnounceIn, AnnounceOut, Counts, SwarmStore, Totals};
use pixtorrent::tracker_server::swarm::Peer;

use common::servers::Redis;

const TTL: u64 = 100;
const T0: u64 = 1_000_000;

fn peer(n: u8, seeder: bool) -> Peer {
    Peer {
        id: [n; 20],
        addr: SocketAddr::from(([10, 0, 0, n], 6000 + u16::from(n))),
        seeder,
    }
}

async fn ann<S: SwarmStore>(
    s: &S,
    hash: Id,
    p: Peer,
    event: Event,
    numwant: usize,
    now: u64,
) -> AnnounceOut {
    s.announce(AnnounceIn {
        info_hash: hash,
        peer: p,
        event,
        numwant,
        now,
    })
    .await
    .expect("announce")
}

fn counts(complete: u64, incomplete: u64, downloaded: u64) -> Counts {
    Counts {
        complete,
        incomplete,
        downloaded,
    }
}

async fn suite<S: SwarmStore>(s: &S) {
    let h1 = [1; 20];
    // Alone: counted, but never handed itself.
    let r = ann(s, h1, peer(1, false), Event::Started, 50, T0).await;
    assert_eq!(r.counts, counts(0, 1, 0));
    assert!(r.peers.is_empty());
    // A seeder joins and is told about the leecher (address and id as announced).
    let r = ann(s, h1, peer(2, true), Event::Started, 50, T0).await;
    assert_eq!(r.counts, counts(1, 1, 0));
    assert_eq!(r.peers.len(), 1);
    assert_eq!(
        (r.peers[0].id, r.peers[0].addr),
        (peer(1, false).id, peer(1, false).addr)
    );
    // The leecher completes: one download, counted once even if repeated.
    let r = ann(s, h1, peer(1, true), Event::Completed, 50, T0 + 1).await;
    assert_eq!(r.counts, counts(2, 0, 1));
    let r = ann(s, h1, peer(1, true), Event::Completed, 50, T0 + 2).await;
    assert_eq!(r.counts, counts(2, 0, 1));
    // A new port replaces the old entry.
    let mut moved = peer(1, true);
    moved.addr = SocketAddr::from(([10, 9, 9, 9], 7777));
    let r = ann(s, h1, moved, Event::None, 50, T0 + 3).await;
    assert_eq!(r.counts, counts(2, 0, 1));
    let r = ann(s, h1, peer(2, true), Event::None, 50, T0 + 3).await;
    assert_eq!(
        r.peers.iter().map(|p| p.addr).collect::<Vec<_>>(),
        vec![moved.addr]
    );
    // Stopped removes; stopping again or stopping a stranger changes nothing.
    let r = ann(s, h1, peer(2, true), Event::Stopped, 50, T0 + 4).await;
    assert_eq!(r.counts, counts(1, 0, 1));
    let r = ann(s, h1, peer(2, true), Event::Stopped, 50, T0 + 4).await;
    assert_eq!(r.counts, counts(1, 0, 1));
    assert_eq!(
        s.scrape(&[h1, [0xee; 20]], T0 + 4).await.unwrap(),
        vec![counts(1, 0, 1), Counts::default()]
    );
    // A stopped announce for an unknown torrent creates nothing.
    let r = ann(s, [0xdd; 20], peer(3, false), Event::Stopped, 50, T0 + 4).await;
    assert_eq!(r.counts, Counts::default());

    // numwant: a random sample, bounded, distinct, never the asker.
    let h2 = [2; 20];
    for n in 10..40 {
        ann(s, h2, peer(n, n % 3 == 0), Event::Started, 0, T0).await;
    }
    for want in [0usize, 1, 5, 29, 200] {
        let r = ann(s, h2, peer(10, false), Event::None, want, T0).await;
        assert_eq!(r.peers.len(), want.min(29), "numwant {want}");
        let ids: HashSet<Id> = r.peers.iter().map(|p| p.id).collect();
        assert_eq!(ids.len(), r.peers.len(), "distinct");
        assert!(!ids.contains(&[10; 20]), "the asker itself");
    }
    let a = ann(s, h2, peer(11, false), Event::None, 5, T0).await;
    let b = ann(s, h2, peer(11, false), Event::None, 5, T0).await;
    let c = ann(s, h2, peer(11, false), Event::None, 5, T0).await;
    let set = |o: &AnnounceOut| o.peers.iter().map(|p| p.id).collect::<HashSet<_>>();
    assert!(
        set(&a) != set(&b) || set(&b) != set(&c),
        "three samples of 5 from 29 were identical"
    );
    assert_eq!(a.counts, counts(10, 20, 0));

    // Totals over both torrents.
    assert_eq!(
        s.totals().await.unwrap(),
        Totals {
            torrents: 2,
            seeders: 11,
            leechers: 20,
            completed: 1
        }
    );

    // Expiry: at T0 + TTL + 10 only the peers that announced since are left; counts follow.
    let later = T0 + TTL + 10;
    ann(s, h2, peer(12, true), Event::None, 0, later - 5).await;
    ann(s, h2, peer(13, false), Event::None, 0, later - 5).await;
    s.sweep(later).await.unwrap();
    assert_eq!(s.scrape(&[h2], later).await.unwrap(), vec![counts(1, 1, 0)]);
    let r = ann(s, h2, peer(13, false), Event::None, 50, later).await;
    assert_eq!(
        r.peers.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![[12; 20]]
    );
    // h1 had nobody since T0 + 3: gone, with its count of downloads.
    assert_eq!(
        s.scrape(&[h1], later).await.unwrap(),
        vec![Counts::default()]
    );
    assert_eq!(
        s.totals().await.unwrap(),
        Totals {
            torrents: 1,
            seeders: 1,
            leechers: 1,
            completed: 0
        }
    );
    // An IPv6 peer round-trips.
    let v6 = Peer {
        id: [0x66; 20],
        addr: "[2001:db8::1]:51413".parse().unwrap(),
        seeder: false,
    };
    ann(s, h2, v6, Event::Started, 0, later).await;
    let r = ann(s, h2, peer(12, true), Event::None, 50, later).await;
    assert!(r.peers.iter().any(|p| p.addr == v6.addr && p.id == v6.id));
    s.health().await.unwrap();
}

#[tokio::test]
async fn memory_store_follows_the_swarm_rules() {
    suite(&MemoryStore::new(TTL)).await;
}

#[tokio::test]
async fn redis_store_follows_the_swarm_rules() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let store = RedisStore::new(&redis.url(), "suite", TTL).unwrap();
    suite(&store).await;
    // Another prefix on the same Redis is another tracker's world.
    let other = RedisStore::new(&redis.url(), "other", TTL).unwrap();
    assert_eq!(other.totals().await.unwrap(), Totals::default());
}
