//! The lookup state machine driven by a simulated DHT of scripted nodes: it converges on the
//! closest nodes, keeps α in flight, survives timeouts and liars, and always ends.
use super::*;
use rand::{Rng, SeedableRng};

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 6881))
}

/// A network of `n` random nodes; each answers with the K nodes closest to the target it knows
/// (it knows 20 random others plus its 8 nearest), and those in `has` return `peer`.
struct Net {
    ids: Vec<NodeId>,
    knows: Vec<Vec<usize>>,
}

impl Net {
    fn new(n: usize, rng: &mut impl Rng) -> Net {
        let ids: Vec<NodeId> = (0..n).map(|_| NodeId::random(rng)).collect();
        let knows = (0..n)
            .map(|i| {
                let mut near: Vec<usize> = (0..n).filter(|&j| j != i).collect();
                near.sort_by_key(|&j| ids[j].distance(&ids[i]));
                let mut k: Vec<usize> = near.into_iter().take(8).collect();
                k.extend((0..20).map(|_| rng.random_range(0..n)));
                k
            })
            .collect();
        Net { ids, knows }
    }

    fn index(&self, id: &NodeId) -> usize {
        self.ids.iter().position(|x| x == id).unwrap()
    }

    fn answer(&self, i: usize, target: &NodeId) -> Vec<(NodeId, SocketAddr)> {
        let mut k = self.knows[i].clone();
        k.sort_by_key(|&j| self.ids[j].distance(target));
        k.dedup();
        k.into_iter()
            .take(K)
            .map(|j| (self.ids[j], addr(j)))
            .collect()
    }
}

#[test]
fn a_lookup_converges_on_the_true_closest_nodes_with_alpha_in_flight() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let net = Net::new(500, &mut rng);
    let target = NodeId::random(&mut rng);
    let seeds: Vec<_> = (0..3).map(|i| (net.ids[i], addr(i))).collect();
    let mut l = Lookup::new(target, &seeds);
    let mut rounds = 0;
    while !l.is_done() {
        rounds += 1;
        assert!(rounds < 500, "bounded");
        let batch = l.next_queries();
        assert!(batch.len() <= ALPHA);
        assert!(!batch.is_empty(), "not done, so something to ask");
        for (id, _) in batch {
            let i = net.index(&id);
            let peers = if i % 97 == 0 {
                vec![addr(5000)]
            } else {
                vec![]
            };
            l.on_reply(&id, &net.answer(i, &target), &peers, Some(vec![i as u8]));
        }
    }
    let mut truth: Vec<NodeId> = net.ids.clone();
    truth.sort_by_key(|id| id.distance(&target));
    let found: Vec<NodeId> = l.closest_answered().iter().map(|c| c.0).collect();
    assert_eq!(found.len(), K);
    let hits = found.iter().filter(|id| truth[..K].contains(id)).count();
    assert!(hits >= K - 1, "found {hits} of the {K} true closest");
    assert!(l.sent() < 120, "efficient: {} queries", l.sent());
    assert!(
        l.closest_answered().iter().all(|c| c.2.is_some()),
        "tokens kept"
    );
}

#[test]
fn timeouts_are_skipped_and_the_lookup_still_ends() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let net = Net::new(300, &mut rng);
    let target = NodeId::random(&mut rng);
    let seeds: Vec<_> = (0..8).map(|i| (net.ids[i], addr(i))).collect();
    let mut l = Lookup::new(target, &seeds);
    for _ in 0..1000 {
        if l.is_done() {
            break;
        }
        for (id, _) in l.next_queries() {
            let i = net.index(&id);
            if i % 2 == 0 {
                l.on_failure(&id);
            } else {
                l.on_reply(&id, &net.answer(i, &target), &[], None);
            }
        }
    }
    assert!(l.is_done());
    assert!(l
        .closest_answered()
        .iter()
        .all(|c| net.index(&c.0) % 2 == 1));
}

#[test]
fn liars_cannot_keep_it_running_or_unbounded() {
    // Every node answers with 8 brand-new nodes, each batch closer than the last: the query budget
    // (or convergence at the deepest prefix) ends it.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let target = NodeId::random(&mut rng);
    let mut l = Lookup::new(target, &[(NodeId::random(&mut rng), addr(1))]);
    let mut n = 2;
    for _ in 0..10_000 {
        if l.is_done() {
            break;
        }
        for (id, _) in l.next_queries() {
            let fresh: Vec<_> = (0..8)
                .map(|_| {
                    n += 1;
                    let depth = (8 + n / 4).min(159) as u32;
                    (target.with_prefix(depth, &mut rng), addr(n))
                })
                .collect();
            l.on_reply(&id, &fresh, &[], None);
        }
    }
    assert!(l.is_done());
    assert!(l.sent() <= MAX_QUERIES, "{}", l.sent());
    assert!(l.sent() > 50, "the liars did lead it on: {}", l.sent());
    assert!(l.candidates.len() <= MAX_CANDIDATES);
}

#[test]
fn answers_from_strangers_and_repeats_are_ignored_and_peers_are_deduplicated() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let target = NodeId::random(&mut rng);
    let a = NodeId::random(&mut rng);
    let mut l = Lookup::new(target, &[(a, addr(1))]);
    let stranger = NodeId::random(&mut rng);
    l.on_reply(&stranger, &[], &[addr(9)], None);
    assert!(l.peers().is_empty(), "never asked");
    let q = l.next_queries();
    assert_eq!(q, vec![(a, addr(1))]);
    l.on_reply(&a, &[], &[addr(9), addr(9), addr(10)], None);
    l.on_reply(&a, &[], &[addr(11)], None);
    assert_eq!(l.peers(), &[addr(9), addr(10)]);
    assert!(l.is_done());
    assert!(l.next_queries().is_empty());
}

#[test]
fn a_slow_node_frees_its_slot_and_does_not_hold_the_end() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let target = NodeId::random(&mut rng);
    let ids: Vec<NodeId> = (0..4).map(|_| NodeId::random(&mut rng)).collect();
    let seeds: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, addr(i)))
        .collect();
    let mut l = Lookup::new(target, &seeds);
    let first = l.next_queries();
    assert_eq!(first.len(), ALPHA);
    assert!(l.next_queries().is_empty(), "alpha in flight");
    l.on_slow(&first[0].0);
    let next = l.next_queries();
    assert_eq!(
        next.len(),
        1,
        "the slow node's slot went to the fourth node"
    );
    for (id, _) in first[1..].iter().chain(&next) {
        l.on_reply(id, &[], &[], None);
    }
    assert!(l.is_done(), "done without the slow node");
    // Its late answer still counts.
    l.on_reply(&first[0].0, &[], &[addr(77)], Some(vec![1]));
    assert_eq!(l.peers(), &[addr(77)]);
    assert_eq!(l.closest_answered().len(), 4);
}
