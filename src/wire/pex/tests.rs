//! Codec and scope tests; the send and receive rules are in `rules`.

mod rules;

use super::*;

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A public IPv4 address, distinct for each `i` (45.0.0.0/8 is ordinary unicast space).
fn public(i: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x2d00_0000 | i)), 6881)
}

/// `len:bytes`
fn bstr(b: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", b.len()).into_bytes();
    out.extend_from_slice(b);
    out
}

/// A dictionary with its entries in the order given (keys need not be sorted to decode).
fn dict(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"d".to_vec();
    for (k, v) in entries {
        out.extend(bstr(k.as_bytes()));
        out.extend(bstr(v));
    }
    out.push(b'e');
    out
}

fn c4(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut out = ip.to_vec();
    out.extend_from_slice(&port.to_be_bytes());
    out
}

fn c6(ip: &str, port: u16) -> Vec<u8> {
    let mut out = ip.parse::<Ipv6Addr>().unwrap().octets().to_vec();
    out.extend_from_slice(&port.to_be_bytes());
    out
}

#[test]
fn flags_accessors_and_bits() {
    let f = PexFlags::ENCRYPTION | PexFlags::REACHABLE;
    assert_eq!(f.bits(), 0x11);
    assert!(f.prefers_encryption() && f.is_reachable());
    assert!(!f.is_seed() && !f.supports_utp() && !f.supports_holepunch());
    let mut g = PexFlags::NONE;
    g |= PexFlags::SEED;
    g |= PexFlags::UTP | PexFlags::HOLEPUNCH;
    assert_eq!(g, PexFlags(0x0e));
    assert!(g.is_seed() && g.supports_utp() && g.supports_holepunch());
    assert!(g.contains(PexFlags::SEED | PexFlags::UTP));
    assert!(!g.contains(PexFlags::REACHABLE));
    assert_eq!(PexFlags::default(), PexFlags::NONE);
}

#[test]
fn encode_is_libtorrent_layout() {
    let msg = PexMessage {
        added: vec![(a("1.2.3.4:6881"), PexFlags(0x11))],
        dropped: vec![a("[2001:db8::1]:51413")],
    };
    let mut want = b"d5:added6:\x01\x02\x03\x04\x1a\xe17:added.f1:\x116:added60:8:added6.f0:\
                     7:dropped0:8:dropped618:"
        .to_vec();
    want.extend(c6("2001:db8::1", 51413));
    want.push(b'e');
    assert_eq!(msg.encode(), want);
    assert_eq!(PexMessage::parse(&want).unwrap(), msg);
}

#[test]
fn empty_message_has_all_six_keys() {
    let msg = PexMessage::default();
    assert!(msg.is_empty());
    let bytes = msg.encode();
    assert_eq!(
        bytes,
        b"d5:added0:7:added.f0:6:added60:8:added6.f0:7:dropped0:8:dropped60:e"
    );
    assert_eq!(PexMessage::parse(&bytes).unwrap(), msg);
}

#[test]
fn round_trip_v4_v6_and_flags() {
    let msg = PexMessage {
        added: vec![
            (a("45.1.2.3:1"), PexFlags::SEED),
            (a("45.1.2.4:65535"), PexFlags(0xff)),
            (a("[2a00::1]:6881"), PexFlags::UTP | PexFlags::REACHABLE),
            (a("[2a00::2]:6882"), PexFlags::NONE),
        ],
        dropped: vec![a("45.9.9.9:80"), a("[2a00::9]:443")],
    };
    let bytes = msg.encode();
    assert_eq!(PexMessage::parse(&bytes).unwrap(), msg);
    assert!(!msg.is_empty());
}

#[test]
fn parse_puts_v4_before_v6() {
    let msg = PexMessage {
        added: vec![
            (a("[2a00::1]:1"), PexFlags::SEED),
            (a("45.0.0.1:2"), PexFlags::UTP),
        ],
        dropped: vec![],
    };
    let got = PexMessage::parse(&msg.encode()).unwrap();
    assert_eq!(
        got.added,
        vec![
            (a("45.0.0.1:2"), PexFlags::UTP),
            (a("[2a00::1]:1"), PexFlags::SEED)
        ]
    );
}

#[test]
fn v4_mapped_v6_travels_and_parses_as_v4() {
    let msg = PexMessage {
        added: vec![(a("[::ffff:45.0.0.1]:7"), PexFlags::SEED)],
        dropped: vec![a("[::ffff:45.0.0.2]:8")],
    };
    let bytes = msg.encode();
    let want = dict(&[
        ("added", &c4([45, 0, 0, 1], 7)),
        ("added.f", &[2]),
        ("added6", b""),
        ("added6.f", b""),
        ("dropped", &c4([45, 0, 0, 2], 8)),
        ("dropped6", b""),
    ]);
    assert_eq!(bytes, want);
    let parsed = dict(&[("added6", &c6("::ffff:45.0.0.1", 7)), ("added6.f", &[4])]);
    assert_eq!(
        PexMessage::parse(&parsed).unwrap().added,
        vec![(a("45.0.0.1:7"), PexFlags::UTP)]
    );
}

#[test]
fn libtorrent_1_style_v4_only_message() {
    // `d5:added12:…7:added.f2:…7:dropped0:e`: no v6 keys at all.
    let mut added = c4([45, 0, 0, 1], 6881);
    added.extend(c4([45, 0, 0, 2], 51413));
    let bytes = dict(&[
        ("added", &added),
        ("added.f", &[0x10, 0x03]),
        ("dropped", b""),
    ]);
    assert!(bytes.starts_with(b"d5:added12:"));
    let msg = PexMessage::parse(&bytes).unwrap();
    assert_eq!(
        msg.added,
        vec![
            (a("45.0.0.1:6881"), PexFlags::REACHABLE),
            (a("45.0.0.2:51413"), PexFlags::ENCRYPTION | PexFlags::SEED),
        ]
    );
    assert!(msg.dropped.is_empty());
}

#[test]
fn libtorrent_2_first_and_diff_messages() {
    // First message (send_ut_peer_list): all keys, `dropped`/`dropped6` empty.
    let first = dict(&[
        ("added", &c4([45, 0, 0, 1], 6881)),
        ("added.f", &[0x12]),
        ("added6", &c6("2a00::5", 6881)),
        ("added6.f", &[0x04]),
        ("dropped", b""),
        ("dropped6", b""),
    ]);
    let msg = PexMessage::parse(&first).unwrap();
    assert_eq!(msg.added.len(), 2);
    assert_eq!(msg.added[1], (a("[2a00::5]:6881"), PexFlags::UTP));
    // A diff: only drops, in the same six-key shape.
    let diff = dict(&[
        ("added", b""),
        ("added.f", b""),
        ("added6", b""),
        ("added6.f", b""),
        ("dropped", &c4([45, 0, 0, 1], 6881)),
        ("dropped6", &c6("2a00::5", 6881)),
    ]);
    let msg = PexMessage::parse(&diff).unwrap();
    assert!(msg.added.is_empty());
    assert_eq!(msg.dropped, vec![a("45.0.0.1:6881"), a("[2a00::5]:6881")]);
}

#[test]
fn odd_lengths_keep_whole_entries() {
    let mut added = c4([45, 0, 0, 1], 1);
    added.extend(c4([45, 0, 0, 2], 2));
    added.extend([9, 9, 9]);
    let mut added6 = c6("2a00::1", 3);
    added6.extend([1, 2, 3, 4, 5]);
    let mut dropped = c4([45, 0, 0, 3], 4);
    dropped.push(0);
    let bytes = dict(&[
        ("added", &added),
        ("added6", &added6),
        ("dropped", &dropped),
        ("dropped6", &[7; 17]),
    ]);
    let msg = PexMessage::parse(&bytes).unwrap();
    let addrs: Vec<_> = msg.added.iter().map(|e| e.0).collect();
    assert_eq!(
        addrs,
        vec![a("45.0.0.1:1"), a("45.0.0.2:2"), a("[2a00::1]:3")]
    );
    assert_eq!(msg.dropped, vec![a("45.0.0.3:4")]);
}

#[test]
fn missing_short_or_long_flags() {
    let mut added = Vec::new();
    for i in 1..=3 {
        added.extend(c4([45, 0, 0, i], 1));
    }
    let flags_of = |f: Option<&[u8]>| -> Vec<u8> {
        let mut entries: Vec<(&str, &[u8])> = vec![("added", &added)];
        if let Some(f) = f {
            entries.push(("added.f", f));
        }
        let msg = PexMessage::parse(&dict(&entries)).unwrap();
        msg.added.iter().map(|e| e.1.bits()).collect()
    };
    assert_eq!(flags_of(None), vec![0, 0, 0]);
    assert_eq!(flags_of(Some(b"")), vec![0, 0, 0]);
    assert_eq!(flags_of(Some(&[0x02])), vec![0x02, 0, 0]);
    assert_eq!(flags_of(Some(&[1, 2, 4, 8, 16])), vec![1, 2, 4]);
    // Flags without entries are nothing.
    let msg = PexMessage::parse(&dict(&[("added.f", &[1, 2])])).unwrap();
    assert!(msg.is_empty());
}

#[test]
fn unusable_addresses_are_skipped_and_flags_stay_aligned() {
    let mut added = Vec::new();
    let bad4 = [
        ([45, 0, 0, 1], 0),        // port 0
        ([0, 0, 0, 0], 1),         // unspecified
        ([0, 1, 2, 3], 1),         // 0.0.0.0/8
        ([255, 255, 255, 255], 1), // broadcast
        ([224, 0, 0, 1], 1),       // multicast
        ([240, 0, 0, 1], 1),       // reserved
    ];
    for (ip, port) in bad4 {
        added.extend(c4(ip, port));
    }
    added.extend(c4([45, 0, 0, 9], 9));
    let flags = [1, 1, 1, 1, 1, 1, 0x10];
    let mut added6 = c6("::", 1);
    added6.extend(c6("ff02::1", 1));
    added6.extend(c6("2a00::1", 0));
    added6.extend(c6("2a00::9", 9));
    let mut dropped = c4([0, 0, 0, 0], 5);
    dropped.extend(c4([45, 0, 0, 8], 0));
    dropped.extend(c4([45, 0, 0, 8], 8));
    let bytes = dict(&[
        ("added", &added),
        ("added.f", &flags),
        ("added6", &added6),
        ("added6.f", &[1, 1, 1, 0x04]),
        ("dropped", &dropped),
        ("dropped6", &c6("ff02::1", 1)),
    ]);
    let msg = PexMessage::parse(&bytes).unwrap();
    assert_eq!(
        msg.added,
        vec![
            (a("45.0.0.9:9"), PexFlags::REACHABLE),
            (a("[2a00::9]:9"), PexFlags::UTP)
        ]
    );
    assert_eq!(msg.dropped, vec![a("45.0.0.8:8")]);
}

#[test]
fn lan_and_loopback_entries_parse() {
    // Scope decides what is dialled (PexIn), not what parses.
    let mut added = c4([10, 0, 0, 1], 1);
    added.extend(c4([127, 0, 0, 1], 2));
    let msg =
        PexMessage::parse(&dict(&[("added", &added), ("added6", &c6("fe80::1", 3))])).unwrap();
    assert_eq!(msg.added.len(), 3);
}

#[test]
fn entry_counts_are_capped() {
    let mut added = Vec::new();
    for i in 0..150u32 {
        added.extend(c4(Ipv4Addr::from(0x2d00_0000 | i).octets(), 1));
    }
    let mut added6 = Vec::new();
    for i in 1..=10u16 {
        added6.extend(c6(&format!("2a00::{i:x}"), 1));
    }
    let mut dropped = Vec::new();
    for i in 0..500u32 {
        dropped.extend(c4(Ipv4Addr::from(0x2e00_0000 | i).octets(), 1));
    }
    let msg = PexMessage::parse(&dict(&[
        ("added", &added),
        ("added6", &added6),
        ("dropped", &dropped),
        ("dropped6", &c6("2a00::1", 1)),
    ]))
    .unwrap();
    assert_eq!(msg.added.len(), MAX_ADDED_PARSED);
    assert_eq!(msg.added[99].0, a("45.0.0.99:1")); // v4 fill the room first
    assert_eq!(msg.dropped.len(), MAX_DROPPED_PARSED);
    // v6 entries get what room the v4 ones leave.
    let msg =
        PexMessage::parse(&dict(&[("added", &added[..6 * 95]), ("added6", &added6)])).unwrap();
    assert_eq!(msg.added.len(), MAX_ADDED_PARSED);
    assert_eq!(msg.added[99].0, a("[2a00::5]:1"));
}

#[test]
fn largest_payload_stays_bounded() {
    let added = vec![45u8; 60 * 1024 / V4_LEN * V4_LEN]; // 45.45.45.45:11565, over and over
    let msg = PexMessage::parse(&dict(&[("added", &added)])).unwrap();
    assert_eq!(msg.added.len(), MAX_ADDED_PARSED);
    let too_big = dict(&[("added", &vec![45u8; Limits::PEER_MESSAGE.max_len])]);
    assert!(matches!(
        PexMessage::parse(&too_big),
        Err(PexError::Bencode(BencodeError::TooLarge { .. }))
    ));
}

#[test]
fn junk_is_a_clear_error() {
    for bytes in [&b""[..], b"garbage", b"d5:added", b"d5:added0:e trailing"] {
        let err = PexMessage::parse(bytes).unwrap_err();
        assert!(matches!(err, PexError::Bencode(_)), "{err}");
        assert!(err
            .to_string()
            .starts_with("ut_pex message is not valid bencode: "));
    }
    for (bytes, kind) in [
        (&b"i5e"[..], "integer"),
        (b"le", "list"),
        (b"4:spam", "byte string"),
    ] {
        let err = PexMessage::parse(bytes).unwrap_err();
        assert_eq!(err, PexError::NotADictionary(kind));
        assert_eq!(
            err.to_string(),
            format!("ut_pex message is a {kind}, expected a dictionary")
        );
    }
    for (bytes, key, kind) in [
        (&b"d5:addedi5ee"[..], "added", "integer"),
        (b"d7:added.fle7:dropped0:e", "added.f", "list"),
        (b"d6:added6de8:added6.f0:e", "added6", "dictionary"),
        (b"d8:added6.fi0ee", "added6.f", "integer"),
        (b"d7:droppedi1ee", "dropped", "integer"),
        (b"d8:dropped6lee", "dropped6", "list"),
    ] {
        let err = PexMessage::parse(bytes).unwrap_err();
        assert_eq!(err, PexError::NotAString { key, kind });
        assert!(!err.to_string().contains('\n'));
    }
}

#[test]
fn unknown_keys_and_empty_dict_are_fine() {
    assert_eq!(PexMessage::parse(b"de").unwrap(), PexMessage::default());
    let msg = PexMessage::parse(b"d1:xli1eli2eee5:added6:-\x00\x00\x01\x00\x01e").unwrap();
    assert_eq!(msg.added, vec![(a("45.0.0.1:1"), PexFlags::NONE)]);
    // Too deep for PEER_MESSAGE: refused by the scan, not a panic.
    let deep = format!("d1:x{}{}e", "l".repeat(20), "e".repeat(20));
    assert!(matches!(
        PexMessage::parse(deep.as_bytes()),
        Err(PexError::Bencode(BencodeError::TooDeep { .. }))
    ));
}

#[test]
fn scope_classification() {
    use Scope::*;
    let cases: &[(&str, Option<Scope>)] = &[
        ("127.0.0.1", Some(Loopback)),
        ("127.8.9.10", Some(Loopback)),
        ("10.1.2.3", Some(Lan)),
        ("172.16.0.1", Some(Lan)),
        ("172.31.255.255", Some(Lan)),
        ("172.32.0.1", Some(Global)),
        ("192.168.1.1", Some(Lan)),
        ("169.254.1.1", Some(Lan)),
        ("100.64.0.1", Some(Lan)),
        ("100.127.255.255", Some(Lan)),
        ("100.63.255.255", Some(Global)),
        ("100.128.0.1", Some(Global)),
        ("8.8.8.8", Some(Global)),
        ("203.0.113.5", Some(Global)),
        ("0.0.0.0", None),
        ("0.1.2.3", None),
        ("224.0.0.1", None),
        ("239.255.255.250", None),
        ("240.0.0.1", None),
        ("255.255.255.255", None),
        ("::1", Some(Loopback)),
        ("fe80::1", Some(Lan)),
        ("febf::1", Some(Lan)),
        ("fec0::1", Some(Lan)),
        ("fc00::1", Some(Lan)),
        ("fdff::1", Some(Lan)),
        ("fe00::1", Some(Global)),
        ("2001:db8::1", Some(Global)),
        ("2a00:1450::1", Some(Global)),
        ("::", None),
        ("ff02::1", None),
        ("ff0e::1", None),
        ("::ffff:10.0.0.1", Some(Lan)),
        ("::ffff:127.0.0.1", Some(Loopback)),
        ("::ffff:8.8.8.8", Some(Global)),
        ("::ffff:0.0.0.0", None),
    ];
    for &(ip, want) in cases {
        assert_eq!(scope(ip.parse().unwrap()), want, "{ip}");
    }
}

#[test]
fn visibility_by_scope() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let (lo, lan, lan6, public, public6) =
        ("127.0.0.2", "192.168.1.5", "fd00::5", "8.8.8.8", "2a00::1");
    for peer in [lo, lan, lan6, public, public6] {
        assert!(visible_to(ip(public), ip(peer)), "{peer}");
        assert!(visible_to(ip(public6), ip(peer)), "{peer}");
        assert!(!visible_to(ip("224.0.0.1"), ip(peer)));
    }
    for addr in [lo, "::1", lan, "10.0.0.1", "100.64.1.1", "fe80::1", lan6] {
        assert!(!visible_to(ip(addr), ip(public)), "{addr}");
        assert!(!visible_to(ip(addr), ip(public6)), "{addr}");
        assert!(visible_to(ip(addr), ip(lo)), "{addr}");
    }
    assert!(visible_to(ip("10.0.0.1"), ip(lan)));
    assert!(visible_to(ip("fe80::1"), ip(lan)));
    assert!(!visible_to(ip("127.0.0.1"), ip(lan)));
    assert!(!visible_to(ip("::1"), ip(lan6)));
    // A peer on an address without a scope counts as public.
    assert!(!visible_to(ip(lan), ip("0.0.0.0")));
    assert!(visible_to(ip(public), ip("0.0.0.0")));
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let _ = PexMessage::parse(&bytes);
    }

    /// Dictionaries with the real keys and arbitrary values reach past the bencode checks.
    #[test]
    fn parse_pex_shaped_junk_is_bounded(
        values in proptest::collection::vec(
            (0..8usize, proptest::collection::vec(proptest::num::u8::ANY, 0..400), proptest::bool::ANY),
            0..8,
        )
    ) {
        let keys = ["added", "added.f", "added6", "added6.f", "dropped", "dropped6", "x", "added.g"];
        let mut d = Value::dict([]);
        for (k, bytes, as_int) in values {
            let v = if as_int { Value::Int(bytes.len() as i64) } else { Value::Bytes(bytes) };
            d.insert(keys[k], v);
        }
        if let Ok(msg) = PexMessage::parse(&d.encode()) {
            proptest::prop_assert!(msg.added.len() <= MAX_ADDED_PARSED);
            proptest::prop_assert!(msg.dropped.len() <= MAX_DROPPED_PARSED);
            proptest::prop_assert!(msg.added.iter().all(|(a, _)| is_peer_addr(a)));
            proptest::prop_assert!(msg.dropped.iter().all(is_peer_addr));
        }
    }

    #[test]
    fn encode_parse_round_trip(
        v4 in proptest::collection::vec((proptest::num::u32::ANY, 1..=u16::MAX, proptest::num::u8::ANY), 0..40),
        v6 in proptest::collection::vec((proptest::num::u128::ANY, 1..=u16::MAX, proptest::num::u8::ANY), 0..40),
        gone in proptest::collection::vec((proptest::num::u32::ANY, 1..=u16::MAX), 0..40),
    ) {
        let v4 = v4.into_iter().map(|(ip, port, f)| (SocketAddr::new(Ipv4Addr::from(ip).into(), port), PexFlags(f)));
        let v6 = v6.into_iter().map(|(ip, port, f)| (SocketAddr::new(Ipv6Addr::from(ip).into(), port), PexFlags(f)));
        let msg = PexMessage {
            added: v4.chain(v6).filter(|(a, _)| is_peer_addr(a)).map(|(a, f)| (canonical(a), f)).collect(),
            dropped: gone.into_iter().map(|(ip, port)| SocketAddr::new(Ipv4Addr::from(ip).into(), port)).filter(is_peer_addr).collect(),
        };
        let mut want = msg.clone();
        want.added.sort_by_key(|(a, _)| a.is_ipv6()); // stable: v4 first, each family in order
        proptest::prop_assert_eq!(PexMessage::parse(&msg.encode()).unwrap(), want);
    }
}
