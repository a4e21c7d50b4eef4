//! Routing table: insertion, splits, replacement after three failures, refresh, address rules.
use super::*;
use rand::SeedableRng;

fn addr(i: u32) -> SocketAddr {
    SocketAddr::from(([8, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881))
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn table() -> (Table, Instant, rand::rngs::StdRng) {
    let now = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let own = NodeId::random(&mut rng);
    (Table::new(own, Policy::default(), now), now, rng)
}

#[test]
fn the_first_bucket_takes_k_nodes_then_splits_towards_our_id() {
    let (mut t, now, mut rng) = table();
    let own = t.own();
    // 8 far nodes (prefix 0) fill the only bucket.
    for i in 0..K as u32 {
        let id = own.with_prefix(0, &mut rng);
        assert_eq!(t.insert(id, addr(i), true, now), Inserted::Added);
    }
    assert_eq!(t.depth(), 1);
    // A ninth far node: the bucket splits, but all 8 stay at depth 0: cached.
    let far = own.with_prefix(0, &mut rng);
    assert_eq!(t.insert(far, addr(100), true, now), Inserted::Cached);
    // Near nodes go to the deeper buckets the splits made.
    for i in 0..K as u32 {
        let id = own.with_prefix(5, &mut rng);
        assert_eq!(t.insert(id, addr(200 + i), true, now), Inserted::Added);
    }
    assert!(t.depth() >= 2);
    assert_eq!(t.len(), 2 * K);
    // Every node is in the bucket of its prefix (or the last one).
    for e in t.nodes() {
        let p = own.common_prefix(&e.id) as usize;
        assert!(p == 0 || p == 5, "{p}");
    }
}

#[test]
fn a_node_failing_three_times_is_replaced_by_the_newest_replacement() {
    let (mut t, now, mut rng) = table();
    let own = t.own();
    let ids: Vec<NodeId> = (0..K).map(|_| own.with_prefix(0, &mut rng)).collect();
    for (i, id) in ids.iter().enumerate() {
        t.insert(*id, addr(i as u32), true, now);
    }
    let spare1 = own.with_prefix(0, &mut rng);
    let spare2 = own.with_prefix(0, &mut rng);
    assert_eq!(t.insert(spare1, addr(50), true, now), Inserted::Cached);
    assert_eq!(t.insert(spare2, addr(51), true, now), Inserted::Cached);
    t.failed(&ids[3]);
    t.failed(&ids[3]);
    assert!(t.nodes().any(|e| e.id == ids[3]), "two failures: kept");
    t.failed(&ids[3]);
    assert!(!t.nodes().any(|e| e.id == ids[3]), "three: replaced");
    assert!(t.nodes().any(|e| e.id == spare2), "by the newest");
    // An answer resets the count.
    t.failed(&ids[4]);
    t.failed(&ids[4]);
    assert_eq!(t.insert(ids[4], addr(4), true, now), Inserted::Updated);
    t.failed(&ids[4]);
    assert!(t.nodes().any(|e| e.id == ids[4]));
}

#[test]
fn a_bad_node_without_replacement_gives_way_to_a_new_one() {
    let (mut t, now, mut rng) = table();
    let own = t.own();
    let ids: Vec<NodeId> = (0..K).map(|_| own.with_prefix(0, &mut rng)).collect();
    for (i, id) in ids.iter().enumerate() {
        t.insert(*id, addr(i as u32), true, now);
    }
    for _ in 0..MAX_FAILS {
        t.failed(&ids[0]);
    }
    assert!(
        !t.closest(&ids[0], K).iter().any(|(id, _)| *id == ids[0]),
        "bad nodes are not handed out"
    );
    let new = own.with_prefix(0, &mut rng);
    assert_eq!(t.insert(new, addr(60), true, now), Inserted::Added);
}

#[test]
fn closest_is_sorted_by_xor_distance() {
    let (mut t, now, mut rng) = table();
    for i in 0..100u32 {
        t.insert(NodeId::random(&mut rng), addr(i), true, now);
    }
    let target = NodeId::random(&mut rng);
    let got = t.closest(&target, K);
    assert_eq!(got.len(), K);
    for w in got.windows(2) {
        assert!(w[0].0.distance(&target) <= w[1].0.distance(&target));
    }
    let best = t.nodes().map(|e| e.id.distance(&target)).min().unwrap();
    assert_eq!(got[0].0.distance(&target), best);
}

#[test]
fn stale_buckets_are_refreshed_with_a_target_inside_them() {
    let (mut t, now, mut rng) = table();
    let own = t.own();
    for i in 0..20u32 {
        t.insert(NodeId::random(&mut rng), addr(i), true, now);
    }
    assert!(t.refresh_targets(now, &mut rng).is_empty());
    let later = now + REFRESH;
    let targets = t.refresh_targets(later, &mut rng);
    assert_eq!(targets.len(), t.depth());
    for (depth, target) in targets.iter().enumerate() {
        assert_eq!(own.common_prefix(target) as usize, depth);
    }
    assert!(t.refresh_targets(later, &mut rng).is_empty(), "refreshed");
    assert_eq!(t.questionable(later, 100).len(), t.len());
}

#[test]
fn address_rules() {
    let (mut t, now, mut rng) = table();
    // Local addresses are refused unless allowed; one node per IP otherwise.
    assert_eq!(
        t.insert(NodeId::random(&mut rng), local(1), true, now),
        Inserted::Refused
    );
    assert_eq!(
        t.insert(
            NodeId::random(&mut rng),
            SocketAddr::from(([192, 168, 1, 2], 1)),
            true,
            now
        ),
        Inserted::Refused
    );
    assert_eq!(
        t.insert(NodeId::random(&mut rng), addr(0), true, now),
        Inserted::Added
    );
    let same_ip = SocketAddr::from(([8, 0, 0, 0], 7000));
    assert_eq!(
        t.insert(NodeId::random(&mut rng), same_ip, true, now),
        Inserted::Refused
    );
    assert_eq!(
        t.insert(t.own(), addr(5), true, now),
        Inserted::Refused,
        "ourselves"
    );
    let port0 = SocketAddr::from(([8, 8, 8, 8], 0));
    assert_eq!(
        t.insert(NodeId::random(&mut rng), port0, true, now),
        Inserted::Refused
    );
    // A known id at a new address is not moved (no hijack).
    let id = NodeId::random(&mut rng);
    t.insert(id, addr(9), true, now);
    assert_eq!(t.insert(id, addr(10), true, now), Inserted::Refused);
    // With local nodes allowed: many on 127.0.0.1, one per port.
    let mut l = Table::new(NodeId::random(&mut rng), Policy { allow_local: true }, now);
    for port in 1..=20 {
        assert_eq!(
            l.insert(NodeId::random(&mut rng), local(port), true, now),
            Inserted::Added
        );
    }
}
