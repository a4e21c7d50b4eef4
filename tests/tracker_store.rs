//! One test suite for both swarm stores: the in-memory store, and the Redis store against a real
//! `redis-server` this test starts (random port, nothing persisted) and against a real Redis
//! Cluster (3 primaries, 3 replicas) it starts, where one primary is also killed mid-load. The clock is a number the suite
//! advances, so expiry is tested without waiting. The bounds (`--max-torrents`,
//! `--max-peers-total`) are held to the same rules on both, under concurrent announces too.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use pixtorrent::tracker_server::memory::MemoryStore;
use pixtorrent::tracker_server::redis_store::RedisStore;
use pixtorrent::tracker_server::store::{
    AnnounceIn, AnnounceOut, Counts, Event, Id, Limit, Limits, StoreError, SwarmStore, Totals,
};
use pixtorrent::tracker_server::swarm::Peer;
use pixtorrent::types::{InfoHash, PeerId};

use common::redis_cluster::RedisCluster;
use common::servers::Redis;

const TTL: u64 = 100;
const T0: u64 = 1_000_000;

fn peer(n: u8, seeder: bool) -> Peer {
    Peer {
        id: PeerId([n; 20]),
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
    let h1 = InfoHash([1; 20]);
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
        s.scrape(&[h1, InfoHash([0xee; 20])], T0 + 4).await.unwrap(),
        vec![counts(1, 0, 1), Counts::default()]
    );
    // A stopped announce for an unknown torrent creates nothing.
    let r = ann(
        s,
        InfoHash([0xdd; 20]),
        peer(3, false),
        Event::Stopped,
        50,
        T0 + 4,
    )
    .await;
    assert_eq!(r.counts, Counts::default());

    // numwant: a random sample, bounded, distinct, never the asker.
    let h2 = InfoHash([2; 20]);
    for n in 10..40 {
        ann(s, h2, peer(n, n % 3 == 0), Event::Started, 0, T0).await;
    }
    for want in [0usize, 1, 5, 29, 200] {
        let r = ann(s, h2, peer(10, false), Event::None, want, T0).await;
        assert_eq!(r.peers.len(), want.min(29), "numwant {want}");
        let ids: HashSet<PeerId> = r.peers.iter().map(|p| p.id).collect();
        assert_eq!(ids.len(), r.peers.len(), "distinct");
        assert!(!ids.contains(&PeerId([10; 20])), "the asker itself");
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
        vec![PeerId([12; 20])]
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
        id: PeerId([0x66; 20]),
        addr: "[2001:db8::1]:51413".parse().unwrap(),
        seeder: false,
    };
    ann(s, h2, v6, Event::Started, 0, later).await;
    let r = ann(s, h2, peer(12, true), Event::None, 50, later).await;
    assert!(r.peers.iter().any(|p| p.addr == v6.addr && p.id == v6.id));
    s.health().await.unwrap();
}

/// The announce's refusal: which bound, and the message a client reads.
async fn refused<S: SwarmStore>(s: &S, hash: Id, p: Peer, event: Event, now: u64) -> Limit {
    let r = s
        .announce(AnnounceIn {
            info_hash: hash,
            peer: p,
            event,
            numwant: 50,
            now,
        })
        .await;
    match r {
        Err(e @ StoreError::Full { limit, .. }) => {
            assert!(e.to_string().starts_with("tracker full"), "{e}");
            limit
        }
        other => panic!("not refused: {other:?}"),
    }
}

fn totals(torrents: u64, seeders: u64, leechers: u64, completed: u64) -> Totals {
    Totals {
        torrents,
        seeders,
        leechers,
        completed,
    }
}

/// Limits of this suite: two torrents, three peers.
const SMALL: Limits = Limits {
    torrents: 2,
    peers: 3,
};

/// Past `SMALL`, new swarms and new peers are refused and write nothing; peers already in keep
/// announcing; `stopped`, emptied swarms and expiry make room; the totals stay exact throughout.
async fn bounds_suite<S: SwarmStore>(s: &S) {
    let [ha, hb, hc, hd] = [0xa1, 0xa2, 0xa3, 0xa4].map(|b| InfoHash([b; 20]));
    ann(s, ha, peer(1, false), Event::Started, 50, T0).await;
    ann(s, hb, peer(2, false), Event::Started, 50, T0).await;
    // Two torrents: a third is refused, whatever its event, and leaves no trace.
    assert_eq!(
        refused(s, hc, peer(3, false), Event::Started, T0).await,
        Limit::Torrents
    );
    assert_eq!(
        refused(s, hc, peer(3, true), Event::Completed, T0).await,
        Limit::Torrents
    );
    assert_eq!(
        refused(s, hc, peer(3, false), Event::None, T0).await,
        Limit::Torrents
    );
    assert_eq!(s.scrape(&[hc], T0).await.unwrap(), vec![Counts::default()]);
    assert_eq!(s.totals().await.unwrap(), totals(2, 0, 2, 0));
    // A stopped announce for an unknown torrent is no new swarm: answered, not refused.
    let r = ann(s, hc, peer(3, false), Event::Stopped, 50, T0).await;
    assert_eq!(r.counts, Counts::default());
    // A new peer in a known swarm is fine up to three peers, then refused in any swarm.
    let r = ann(s, ha, peer(3, false), Event::Started, 50, T0).await;
    assert_eq!(r.counts, counts(0, 2, 0));
    assert_eq!(
        refused(s, ha, peer(4, false), Event::Started, T0).await,
        Limit::Peers
    );
    assert_eq!(
        refused(s, hb, peer(4, true), Event::Completed, T0).await,
        Limit::Peers
    );
    // Peers already in keep announcing: updates, completed, a new address.
    let r = ann(s, ha, peer(1, true), Event::Completed, 50, T0 + 1).await;
    assert_eq!(r.counts, counts(1, 1, 1));
    assert_eq!(r.peers.len(), 1);
    let mut moved = peer(2, false);
    moved.addr = SocketAddr::from(([10, 8, 8, 8], 7000));
    let r = ann(s, hb, moved, Event::None, 50, T0 + 1).await;
    assert_eq!(r.counts, counts(0, 1, 0));
    assert_eq!(s.totals().await.unwrap(), totals(2, 1, 2, 1));
    // Stopped frees a peer's place: someone else may take it, then it is full again.
    ann(s, ha, peer(3, false), Event::Stopped, 50, T0 + 2).await;
    let r = ann(s, hb, peer(4, true), Event::Started, 50, T0 + 2).await;
    assert_eq!(r.counts, counts(1, 1, 0));
    assert_eq!(
        refused(s, ha, peer(5, false), Event::Started, T0 + 2).await,
        Limit::Peers
    );
    assert_eq!(s.totals().await.unwrap(), totals(2, 2, 1, 1));
    // A swarm whose last peer stops is gone, and frees a torrent's place.
    ann(s, hb, peer(2, false), Event::Stopped, 50, T0 + 3).await;
    ann(s, hb, peer(4, true), Event::Stopped, 50, T0 + 3).await;
    assert_eq!(s.totals().await.unwrap(), totals(1, 1, 0, 1));
    let r = ann(s, hc, peer(5, false), Event::Started, 50, T0 + 3).await;
    assert_eq!(r.counts, counts(0, 1, 0));
    assert_eq!(
        refused(s, hb, peer(6, false), Event::Started, T0 + 3).await,
        Limit::Torrents
    );
    assert_eq!(s.totals().await.unwrap(), totals(2, 1, 1, 1));
    // Expiry frees both: only ha's seeder announced since, so hc is swept away.
    let later = T0 + TTL + 10;
    ann(s, ha, peer(1, true), Event::None, 50, later - 5).await;
    s.sweep(later).await.unwrap();
    assert_eq!(s.totals().await.unwrap(), totals(1, 1, 0, 1));
    ann(s, hd, peer(6, false), Event::Started, 50, later).await;
    ann(s, hd, peer(7, false), Event::Started, 50, later).await;
    assert_eq!(
        refused(s, hc, peer(8, false), Event::Started, later).await,
        Limit::Torrents
    );
    assert_eq!(
        refused(s, hd, peer(8, false), Event::Started, later).await,
        Limit::Peers
    );
    assert_eq!(s.totals().await.unwrap(), totals(2, 1, 2, 1));
    // Room for a torrent but none for its peer: refused by the peer bound, and the torrent's
    // place is not kept either (once a peer leaves, the new swarm gets in).
    ann(s, ha, peer(1, true), Event::Stopped, 50, later).await;
    ann(s, hd, peer(9, false), Event::Started, 50, later).await;
    assert_eq!(s.totals().await.unwrap(), totals(1, 0, 3, 0));
    assert_eq!(
        refused(s, hc, peer(8, false), Event::Started, later).await,
        Limit::Peers
    );
    ann(s, hd, peer(7, false), Event::Stopped, 50, later).await;
    let r = ann(s, hc, peer(8, false), Event::Started, 50, later).await;
    assert_eq!(r.counts, counts(0, 1, 0));
    assert_eq!(s.totals().await.unwrap(), totals(2, 0, 3, 0));
}

/// 64 announces at once, each for its own torrent, under a bound of 10 torrents: exactly 10 get
/// in, whatever the interleaving (memory: one atomic count across shards; Redis: one script).
async fn concurrent_bounds<S: SwarmStore>(s: Arc<S>) {
    let ok = concurrent_new_swarms(&s).await;
    assert_eq!(ok, 10);
}

/// The 64 concurrent new swarms under a bound of 10: how many got in (the totals agree).
async fn concurrent_new_swarms<S: SwarmStore>(s: &Arc<S>) -> u64 {
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..64u8 {
        let s = s.clone();
        tasks.spawn(async move {
            // First bytes differ, so the memory store spreads them over its shards.
            let mut hash = [0x30; 20];
            hash[0] = n.wrapping_mul(4);
            s.announce(AnnounceIn {
                info_hash: InfoHash(hash),
                peer: peer(n, false),
                event: Event::Started,
                numwant: 0,
                now: T0,
            })
            .await
        });
    }
    let (mut ok, mut full) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Full {
                limit: Limit::Torrents,
                max: 10,
            }) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok + full, 64);
    assert_eq!(s.totals().await.unwrap(), totals(ok, 0, ok, 0));
    ok
}

#[tokio::test]
async fn memory_store_follows_the_swarm_rules() {
    suite(&MemoryStore::new(TTL, Limits::default())).await;
}

#[tokio::test]
async fn redis_store_follows_the_swarm_rules() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let store = RedisStore::new(&redis.url(), "suite", TTL, Limits::default()).unwrap();
    suite(&store).await;
    // Another prefix on the same Redis is another tracker's world.
    let other = RedisStore::new(&redis.url(), "other", TTL, Limits::default()).unwrap();
    assert_eq!(other.totals().await.unwrap(), Totals::default());
}

/// A flood of 450 one-peer swarms (more than one sweep batch of the Redis store) all expire in
/// one sweep, giving back every place under the bounds.
async fn flood_expires_in_one_sweep<S: SwarmStore>(s: &S) {
    for n in 0..450u32 {
        let mut hash = [0x5f; 20];
        hash[..4].copy_from_slice(&n.to_be_bytes());
        ann(s, InfoHash(hash), peer(1, false), Event::Started, 0, T0).await;
    }
    assert_eq!(s.totals().await.unwrap(), totals(450, 0, 450, 0));
    assert_eq!(s.sweep(T0 + TTL + 1).await.unwrap(), 450);
    assert_eq!(s.totals().await.unwrap(), Totals::default());
}

#[tokio::test]
async fn memory_store_holds_its_bounds() {
    bounds_suite(&MemoryStore::new(TTL, SMALL)).await;
    flood_expires_in_one_sweep(&MemoryStore::new(TTL, Limits::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_bounds_hold_under_concurrent_announces() {
    let limits = Limits {
        torrents: 10,
        peers: 1000,
    };
    concurrent_bounds(Arc::new(MemoryStore::new(TTL, limits))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_holds_its_bounds_and_its_keys() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let store = RedisStore::new(&redis.url(), "bounds", TTL, SMALL).unwrap();
    bounds_suite(&store).await;
    // At the bounds, a flood of new torrents and of new peers writes no key at all.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys = || redis::cmd("DBSIZE");
    let before: u64 = keys().query_async(&mut con).await.unwrap();
    for n in 0..100u8 {
        let now = T0 + TTL + 10;
        assert_eq!(
            refused(
                &store,
                InfoHash([n; 20]),
                peer(n, true),
                Event::Completed,
                now
            )
            .await,
            Limit::Torrents
        );
        assert_eq!(
            refused(
                &store,
                InfoHash([0xa4; 20]),
                peer(100 + n, false),
                Event::Started,
                now
            )
            .await,
            Limit::Peers
        );
    }
    let after: u64 = keys().query_async(&mut con).await.unwrap();
    assert_eq!(after, before);
    let limits = Limits {
        torrents: 10,
        peers: 1000,
    };
    concurrent_bounds(Arc::new(
        RedisStore::new(&redis.url(), "race", TTL, limits).unwrap(),
    ))
    .await;
    let flood = RedisStore::new(&redis.url(), "flood", TTL, Limits::default()).unwrap();
    flood_expires_in_one_sweep(&flood).await;
}

/// The suites on a Redis Cluster, one cluster for all (each part under its own prefix). The
/// bounds are exact for one process's sequential announces; 64 at once in different slots can
/// pass them (each script sees only its own slot live), and then nothing more gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_store_follows_the_rules_and_its_bounds() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let urls = cluster.urls();
    let store = RedisStore::cluster(&urls, "suite", TTL, Limits::default()).unwrap();
    store.health().await.unwrap();
    assert_eq!(store.kind(), "redis-cluster");
    suite(&store).await;
    let other = RedisStore::cluster(&urls[3..], "other", TTL, Limits::default()).unwrap();
    assert_eq!(other.totals().await.unwrap(), Totals::default());

    bounds_suite(&RedisStore::cluster(&urls, "bounds", TTL, SMALL).unwrap()).await;
    let limits = Limits {
        torrents: 10,
        peers: 1000,
    };
    let race = Arc::new(RedisStore::cluster(&urls, "race", TTL, limits).unwrap());
    let ok = concurrent_new_swarms(&race).await;
    assert!((10..=64).contains(&ok), "{ok}");
    let late = race
        .announce(AnnounceIn {
            info_hash: InfoHash([0x99; 20]),
            peer: peer(99, false),
            event: Event::Started,
            numwant: 0,
            now: T0,
        })
        .await;
    assert!(matches!(late, Err(StoreError::Full { .. })), "{late:?}");
    let flood = RedisStore::cluster(&urls, "flood", TTL, Limits::default()).unwrap();
    flood_expires_in_one_sweep(&flood).await;
    drop(cluster);
}
