//! The send side ([`PexOut`]) and receive side ([`PexIn`]) rules, over several rounds of fake time.

use std::collections::BTreeSet;

use super::{a, public};
use crate::wire::pex::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn peers(addrs: &[SocketAddr]) -> Vec<(SocketAddr, PexFlags)> {
    addrs.iter().map(|&a| (a, PexFlags::NONE)).collect()
}

fn addrs(entries: &[(SocketAddr, PexFlags)]) -> Vec<SocketAddr> {
    entries.iter().map(|e| e.0).collect()
}

const RECEIVER: &str = "45.200.0.1:6881";

/// A `PexOut` created at `t0` and the time its first message is due.
fn out_at(t0: Instant) -> (PexOut, Instant) {
    let out = PexOut::new(t0);
    let first = out.due();
    (out, first)
}

#[test]
fn first_message_waits_the_short_delay() {
    let t0 = Instant::now();
    let (mut out, first) = out_at(t0);
    assert_eq!(first, t0 + FIRST_MESSAGE_DELAY);
    let conn = peers(&[public(1), public(2)]);
    let r = a(RECEIVER);
    assert_eq!(out.next(t0, &conn, r), None);
    assert_eq!(out.next(first - secs(1), &conn, r), None);
    let msg = out.next(first, &conn, r).unwrap();
    assert_eq!(addrs(&msg.added), vec![public(1), public(2)]);
    assert!(msg.dropped.is_empty());
    assert_eq!(out.told(), 2);
    assert_eq!(out.due(), first + PEX_INTERVAL);
}

#[test]
fn nothing_to_say_is_none_and_does_not_restart_the_interval() {
    let t0 = Instant::now();
    let (mut out, first) = out_at(t0);
    let r = a(RECEIVER);
    assert_eq!(out.next(first, &[], r), None);
    assert_eq!(out.due(), first);
    // Something to say later: it goes at once.
    let msg = out.next(first + secs(7), &peers(&[public(1)]), r).unwrap();
    assert_eq!(addrs(&msg.added), vec![public(1)]);
    // Same set a minute later: nothing.
    let t1 = first + secs(7) + PEX_INTERVAL;
    assert_eq!(out.next(t1, &peers(&[public(1)]), r), None);
    assert_eq!(out.due(), first + secs(7) + PEX_INTERVAL);
}

#[test]
fn diffs_across_rounds() {
    let t0 = Instant::now();
    let (mut out, mut t) = out_at(t0);
    let r = a(RECEIVER);
    let (pa, pb, pc) = (public(1), public(2), public(3));
    let msg = out.next(t, &peers(&[pa, pb]), r).unwrap();
    assert_eq!(addrs(&msg.added), vec![pa, pb]);
    // Within the interval nothing goes, whatever changed.
    assert_eq!(out.next(t + secs(59), &peers(&[pb, pc]), r), None);
    t += PEX_INTERVAL;
    let msg = out.next(t, &peers(&[pb, pc]), r).unwrap();
    assert_eq!(addrs(&msg.added), vec![pc]);
    assert_eq!(msg.dropped, vec![pa]);
    t += PEX_INTERVAL;
    // Re-added after being dropped.
    let msg = out.next(t, &peers(&[pa, pb, pc]), r).unwrap();
    assert_eq!(addrs(&msg.added), vec![pa]);
    assert!(msg.dropped.is_empty());
    t += PEX_INTERVAL;
    // Everyone gone.
    let msg = out.next(t, &[], r).unwrap();
    assert!(msg.added.is_empty());
    assert_eq!(msg.dropped, vec![pa, pb, pc]);
    assert_eq!(out.told(), 0);
}

#[test]
fn transient_connections_are_elided() {
    let t0 = Instant::now();
    let (mut out, t) = out_at(t0);
    let r = a(RECEIVER);
    let (pa, pb) = (public(1), public(2));
    out.next(t, &peers(&[pa]), r).unwrap();
    // pb came and went between messages; pa dropped and came back.
    assert_eq!(out.next(t + secs(20), &peers(&[pb]), r), None);
    assert_eq!(out.next(t + PEX_INTERVAL, &peers(&[pa]), r), None);
    assert_eq!(out.told(), 1);
}

#[test]
fn added_cap_carries_over() {
    let t0 = Instant::now();
    let (mut out, mut t) = out_at(t0);
    let r = a(RECEIVER);
    let all: Vec<SocketAddr> = (1..=120).map(public).collect();
    let conn = peers(&all);
    let mut seen = Vec::new();
    for want in [50, 50, 20] {
        let msg = out.next(t, &conn, r).unwrap();
        assert_eq!(msg.added.len(), want);
        assert!(msg.dropped.is_empty());
        seen.extend(addrs(&msg.added));
        t += PEX_INTERVAL;
    }
    assert_eq!(seen, all); // each once, in `connected` order
    assert_eq!(out.told(), 120);
    assert_eq!(out.next(t, &conn, r), None);
}

#[test]
fn untold_peers_are_never_dropped() {
    let t0 = Instant::now();
    let (mut out, t) = out_at(t0);
    let r = a(RECEIVER);
    let all: Vec<SocketAddr> = (1..=80).map(public).collect();
    out.next(t, &peers(&all), r).unwrap();
    // The 30 not yet told disconnect, and so does one that was told.
    let msg = out.next(t + PEX_INTERVAL, &peers(&all[1..50]), r).unwrap();
    assert!(msg.added.is_empty());
    assert_eq!(msg.dropped, vec![all[0]]);
}

#[test]
fn dropped_cap_carries_over() {
    let t0 = Instant::now();
    let (mut out, mut t) = out_at(t0);
    let r = a(RECEIVER);
    let all: Vec<SocketAddr> = (1..=120).map(public).collect();
    for _ in 0..3 {
        out.next(t, &peers(&all), r).unwrap();
        t += PEX_INTERVAL;
    }
    let mut gone = BTreeSet::new();
    for want in [50, 50, 20] {
        let msg = out.next(t, &[], r).unwrap();
        assert_eq!(msg.dropped.len(), want);
        assert!(msg.dropped.iter().all(|d| gone.insert(*d)));
        t += PEX_INTERVAL;
    }
    assert_eq!(gone.len(), 120);
    assert_eq!(out.told(), 0);
    assert_eq!(out.next(t, &[], r), None);
}

#[test]
fn receiver_duplicates_and_unusable_are_left_out() {
    let t0 = Instant::now();
    let (mut out, t) = out_at(t0);
    let r = a(RECEIVER);
    let conn = vec![
        (r, PexFlags::SEED),
        (a("[::ffff:45.200.0.1]:6881"), PexFlags::NONE), // the receiver, IPv4-mapped
        (public(1), PexFlags::SEED),
        (public(1), PexFlags::UTP),
        (a("45.200.0.1:7000"), PexFlags::NONE), // same host, another port: another peer
        (a("45.0.0.9:0"), PexFlags::NONE),
        (a("0.0.0.0:1"), PexFlags::NONE),
        (a("[ff02::1]:1"), PexFlags::NONE),
    ];
    let msg = out.next(t, &conn, r).unwrap();
    assert_eq!(
        msg.added,
        vec![
            (public(1), PexFlags::SEED),
            (a("45.200.0.1:7000"), PexFlags::NONE)
        ]
    );
    // Only the receiver (or nothing usable): nothing to say.
    let (mut out, t) = out_at(t0);
    assert_eq!(out.next(t, &conn[..2], r), None);
}

/// Every address in the mixed set, with the scope test must admit for each receiver.
fn mixed() -> Vec<SocketAddr> {
    [
        "10.1.2.3:1",
        "172.16.5.5:1",
        "192.168.1.7:1",
        "100.64.0.9:1",
        "169.254.3.3:1",
        "127.0.0.5:1",
        "[::1]:2",
        "[fe80::1]:1",
        "[fc00::1]:1",
        "[fd12::1]:1",
        "8.8.8.8:1",
        "[2a00::8]:1",
    ]
    .iter()
    .map(|s| a(s))
    .collect()
}

fn first_message_to(receiver: &str) -> Vec<SocketAddr> {
    let t0 = Instant::now();
    let (mut out, t) = out_at(t0);
    addrs(&out.next(t, &peers(&mixed()), a(receiver)).unwrap().added)
}

#[test]
fn public_receiver_gets_public_only() {
    for r in ["45.0.0.1:1", "[2a00::1]:1"] {
        assert_eq!(
            first_message_to(r),
            vec![a("8.8.8.8:1"), a("[2a00::8]:1")],
            "{r}"
        );
    }
}

#[test]
fn loopback_receiver_gets_everything() {
    let got = first_message_to("127.0.0.1:6881");
    assert_eq!(got, mixed());
    let got = first_message_to("[::1]:6881");
    assert_eq!(got, mixed());
}

#[test]
fn lan_receiver_gets_lan_and_public() {
    let want: Vec<SocketAddr> = mixed()
        .into_iter()
        .filter(|a| !a.ip().is_loopback())
        .collect();
    for r in [
        "192.168.1.2:1",
        "10.0.0.2:1",
        "100.100.0.1:1",
        "[fd00::2]:1",
    ] {
        assert_eq!(first_message_to(r), want, "{r}");
    }
}

#[test]
fn messages_encode_and_parse_back() {
    let t0 = Instant::now();
    let (mut out, t) = out_at(t0);
    let conn = vec![
        (a("127.0.0.2:6881"), PexFlags::REACHABLE | PexFlags::SEED),
        (a("[::1]:6882"), PexFlags::UTP),
    ];
    let msg = out.next(t, &conn, a("127.0.0.1:7000")).unwrap();
    assert_eq!(PexMessage::parse(&msg.encode()).unwrap(), msg);
}

proptest::proptest! {
    /// Whatever the connected set does, the receiver's picture (applying each message) is exactly
    /// `told`, a message never adds what the receiver already has nor drops what it lacks, and once
    /// the set stops changing the receiver ends up with exactly the connected set.
    #[test]
    fn out_tracks_what_the_peer_was_told(
        rounds in proptest::collection::vec(proptest::collection::vec(proptest::bool::ANY, 130), 1..10)
    ) {
        let t0 = Instant::now();
        let (mut out, first) = out_at(t0);
        let r = a(RECEIVER);
        let mut theirs = BTreeSet::new();
        let mut conn = Vec::new();
        let mut last_sent: Option<Instant> = None;
        let mut now = first;
        for (i, round) in rounds.iter().enumerate() {
            // A round every 30 s: messages may go only every other round at best.
            now = first + secs(30) * i as u32;
            conn = peers(&(0..130u32).filter(|&j| round[j as usize]).map(public).collect::<Vec<_>>());
            let Some(msg) = out.next(now, &conn, r) else { continue };
            proptest::prop_assert!(last_sent.is_none_or(|l| now >= l + PEX_INTERVAL));
            last_sent = Some(now);
            proptest::prop_assert!(!msg.is_empty());
            proptest::prop_assert!(msg.added.len() <= MAX_ADDED_PER_MESSAGE);
            proptest::prop_assert!(msg.dropped.len() <= MAX_DROPPED_PER_MESSAGE);
            for (added, _) in &msg.added {
                proptest::prop_assert!(conn.iter().any(|c| c.0 == *added));
                proptest::prop_assert!(theirs.insert(*added));
            }
            for dropped in &msg.dropped {
                proptest::prop_assert!(!conn.iter().any(|c| c.0 == *dropped));
                proptest::prop_assert!(theirs.remove(dropped));
            }
            proptest::prop_assert_eq!(theirs.len(), out.told());
        }
        for _ in 0..4 {
            now += PEX_INTERVAL;
            if let Some(msg) = out.next(now, &conn, r) {
                theirs.extend(addrs(&msg.added));
                msg.dropped.iter().for_each(|d| { theirs.remove(d); });
            }
        }
        proptest::prop_assert_eq!(theirs, addrs(&conn).into_iter().collect::<BTreeSet<_>>());
    }
}

fn msg(added: &[SocketAddr], dropped: &[SocketAddr]) -> PexMessage {
    PexMessage {
        added: peers(added),
        dropped: dropped.to_vec(),
    }
}

const SENDER: &str = "45.100.0.1:51413";

#[test]
fn in_returns_new_addresses_with_flags() {
    let t0 = Instant::now();
    let mut pin = PexIn::new(a(SENDER));
    let m = PexMessage {
        added: vec![(public(1), PexFlags::SEED), (public(2), PexFlags::UTP)],
        dropped: vec![],
    };
    assert_eq!(pin.accept(t0, &m, &[]), m.added);
    assert_eq!(pin.ignored_messages(), 0);
}

#[test]
fn in_skips_ours_the_sender_and_duplicates() {
    let t0 = Instant::now();
    let mut pin = PexIn::new(a(SENDER));
    let ours = [a("45.7.7.7:6881"), a("[::ffff:45.7.7.8]:6881")];
    let m = msg(
        &[
            a("45.7.7.7:6881"), // us
            a("45.7.7.8:6881"), // us, listed IPv4-mapped in `ours`
            a("45.7.7.7:6882"), // our IP, another port: another peer
            a(SENDER),          // the sender itself
            public(1),
            public(1),           // duplicate
            a("45.0.0.1:9999"),  // same IP as public(1), another port
            a("10.0.0.1:6881"),  // LAN address from a public peer
            a("127.0.0.1:6881"), // loopback from a public peer
            a("[fe80::1]:6881"),
        ],
        &[],
    );
    let got = addrs(&pin.accept(t0, &m, &ours));
    assert_eq!(got, vec![a("45.7.7.7:6882"), public(1)]);
    // Already returned: not again in a later message.
    let again = msg(&[public(1), public(2)], &[]);
    assert_eq!(
        addrs(&pin.accept(t0 + PEX_INTERVAL, &again, &ours)),
        vec![public(2)]
    );
}

#[test]
fn in_dropped_then_re_added_is_returned_again() {
    let t0 = Instant::now();
    let mut pin = PexIn::new(a(SENDER));
    assert_eq!(pin.accept(t0, &msg(&[public(1)], &[]), &[]).len(), 1);
    let t1 = t0 + PEX_INTERVAL;
    // A drop for another port of the same IP does not forget it.
    assert!(pin
        .accept(t1, &msg(&[], &[a("45.0.0.1:1")]), &[])
        .is_empty());
    let t2 = t1 + PEX_INTERVAL;
    assert!(pin.accept(t2, &msg(&[public(1)], &[]), &[]).is_empty());
    // Dropped and re-added in one message: back.
    let t3 = t2 + PEX_INTERVAL;
    let got = pin.accept(t3, &msg(&[public(1)], &[public(1)]), &[]);
    assert_eq!(addrs(&got), vec![public(1)]);
}

#[test]
fn in_scope_follows_the_sender() {
    let t0 = Instant::now();
    let all = mixed();
    let mut lo = PexIn::new(a("127.0.0.1:6881"));
    assert_eq!(addrs(&lo.accept(t0, &msg(&all, &[]), &[])), all);
    let mut lan = PexIn::new(a("192.168.1.2:6881"));
    let want: Vec<_> = all
        .iter()
        .copied()
        .filter(|a| !a.ip().is_loopback())
        .collect();
    assert_eq!(addrs(&lan.accept(t0, &msg(&all, &[]), &[])), want);
}

#[test]
fn in_loopback_keeps_every_port() {
    let t0 = Instant::now();
    let mut pin = PexIn::new(a("127.0.0.1:40000"));
    let local = [
        a("127.0.0.1:6881"),
        a("127.0.0.1:6882"),
        a("127.0.0.1:6881"),
    ];
    let got = addrs(&pin.accept(t0, &msg(&local, &[]), &[a("127.0.0.1:6882")]));
    assert_eq!(got, vec![a("127.0.0.1:6881")]);
}

#[test]
fn in_caps_accepted_per_minute() {
    let t0 = Instant::now();
    let mut pin = PexIn::new(a(SENDER));
    let batch = |from: u32| msg(&(from..from + 100).map(public).collect::<Vec<_>>(), &[]);
    assert_eq!(
        pin.accept(t0, &batch(0), &[]).len(),
        MAX_ACCEPTED_PER_MINUTE
    );
    // 46 s later the window is still full; the refused addresses are not remembered.
    assert!(pin.accept(t0 + secs(46), &batch(100), &[]).is_empty());
    assert_eq!(pin.accept(t0 + secs(100), &batch(100), &[]).len(), 100);
    // A window half full: half a batch.
    let mut pin = PexIn::new(a(SENDER));
    let sixty = msg(&(0..60).map(public).collect::<Vec<_>>(), &[]);
    assert_eq!(pin.accept(t0, &sixty, &[]).len(), 60);
    assert_eq!(pin.accept(t0 + secs(50), &batch(100), &[]).len(), 40);
    assert_eq!(pin.accept(t0 + secs(100), &batch(200), &[]).len(), 60);
}

#[test]
fn in_ignores_a_flood_of_messages() {
    let t0 = Instant::now();
    let mut pin = PexIn::new(a(SENDER));
    let one = |i: u32| msg(&[public(i)], &[]);
    // A burst of two is fine (a backlog read at once); the third is ignored, drops included.
    assert_eq!(pin.accept(t0, &one(1), &[]).len(), 1);
    assert_eq!(pin.accept(t0 + secs(1), &one(2), &[]).len(), 1);
    assert!(pin
        .accept(t0 + secs(2), &msg(&[public(3)], &[public(1)]), &[])
        .is_empty());
    assert_eq!(pin.ignored_messages(), 1);
    assert!(pin.accept(t0 + secs(3), &one(1), &[]).is_empty()); // public(1) still known
    assert_eq!(pin.ignored_messages(), 2);
    // Back on schedule.
    assert_eq!(pin.accept(t0 + secs(46), &one(4), &[]).len(), 1);
    // A message every 10 s for 10 minutes: at most one per 45 s gets through, plus the burst.
    let mut pin = PexIn::new(a(SENDER));
    let processed = (0..60u32)
        .filter(|&i| {
            !pin.accept(t0 + secs(u64::from(i) * 10), &one(i), &[])
                .is_empty()
        })
        .count();
    assert!(
        (600 / 45..=600 / 45 + 2).contains(&processed),
        "{processed}"
    );
    assert_eq!(pin.ignored_messages() as usize, 60 - processed);
}

#[test]
fn in_compliant_sender_is_never_throttled() {
    let t0 = Instant::now();
    let mut pin = PexIn::new(a(SENDER));
    for i in 0..30u32 {
        let at = t0 + PEX_INTERVAL * i;
        assert_eq!(pin.accept(at, &msg(&[public(i)], &[]), &[]).len(), 1);
    }
    assert_eq!(pin.ignored_messages(), 0);
}

#[test]
fn in_remembers_a_bounded_number() {
    let t0 = Instant::now();
    let mut pin = PexIn::new(a(SENDER));
    let mut t = t0;
    let mut next = 0u32;
    let mut total = 0;
    for _ in 0..MAX_REMEMBERED_PER_PEER / MAX_ACCEPTED_PER_MINUTE + 2 {
        let batch: Vec<_> = (next..next + 100).map(public).collect();
        next += 100;
        total += pin.accept(t, &msg(&batch, &[]), &[]).len();
        t += PEX_INTERVAL;
    }
    assert_eq!(total, MAX_REMEMBERED_PER_PEER);
    // A drop makes room for one more.
    let got = pin.accept(
        t,
        &msg(&[public(next), public(next + 1)], &[public(0)]),
        &[],
    );
    assert_eq!(addrs(&got), vec![public(next)]);
}
