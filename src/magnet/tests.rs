use super::*;

const BBB: &str = "5e7886d42a52ae66da4541d88882a04f9a34a649";

fn hash() -> InfoHash {
    InfoHash::from_hex(BBB).unwrap()
}

#[test]
fn link_shape_and_escaping() {
    let h = InfoHash([0xab; 20]);
    let link = magnet_link(
        &InfoHashes::from(h),
        "Big Buck & Bunny",
        &["udp://t:80/announce?x=1".to_string()],
        &["https://archive.org/download/".to_string()],
    );
    assert_eq!(
        link,
        "magnet:?xt=urn:btih:abababababababababababababababababababab&dn=Big%20Buck%20%26%20Bunny\
         &tr=udp%3A%2F%2Ft%3A80%2Fannounce%3Fx%3D1&ws=https%3A%2F%2Farchive.org%2Fdownload%2F"
    );
    assert_eq!(
        magnet_link(&InfoHashes::from(h), "a-b_c.d~e", [], []),
        format!("magnet:?xt=urn:btih:{h}&dn=a-b_c.d~e")
    );
}

#[test]
fn the_link_we_print_parses_back() {
    let trackers = vec![
        "http://bt1.archive.org:6969/announce".to_string(),
        "udp://t:80/announce?x=1&y=2".to_string(),
    ];
    let ws = vec!["https://archive.org/download/".to_string()];
    let link = magnet_link(
        &InfoHashes::from(hash()),
        "Big Buck & Bunny",
        &trackers,
        &ws,
    );
    let m = Magnet::parse(&link).unwrap();
    assert_eq!(m.info_hash, hash());
    assert_eq!(m.name.as_deref(), Some("Big Buck & Bunny"));
    assert_eq!(m.trackers, trackers);
    assert_eq!(m.web_seeds, ws);
    assert!(m.peers.is_empty());
}

#[test]
fn hex_and_base32_in_either_case() {
    for xt in [
        BBB.to_string(),
        BBB.to_ascii_uppercase(),
        "LZ4INVBKKKXGNWSFIHMIRAVAJ6NDJJSJ".to_string(),
        "lz4invbkkkxgnwsfihmiravaj6ndjjsj".to_string(),
    ] {
        let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{xt}")).unwrap();
        assert_eq!(m.info_hash, hash(), "{xt}");
        assert_eq!(m.name, None);
    }
    // The scheme and the urn are case-insensitive; parameter names are not (BEP 9).
    let m = Magnet::parse(&format!("MAGNET:?xt=URN:BTIH:{BBB}")).unwrap();
    assert_eq!(m.info_hash, hash());
    assert_eq!(
        Magnet::parse(&format!("magnet:?XT=urn:btih:{BBB}")),
        Err(MagnetError::NoInfoHash)
    );
}

#[test]
fn every_parameter_and_its_numbered_forms() {
    let uri = format!(
        "magnet:?xt=urn:btih:{BBB}&dn=Big+Buck%20Bunny&tr=http%3A%2F%2Fa%2Fannounce&tr.1=udp://b:1/x\
         &tr=http%3A%2F%2Fa%2Fannounce&ws=https://m/d/&x.pe=10.0.0.1:6881&x.pe=[::1]:7000\
         &x.pe=Peer.Example:51413&x.pe=noport&x.pe=1.2.3.4:0&xl=12345&so=0-3&kt=a+b&xt.1=urn:btih:{BBB}"
    );
    let m = Magnet::parse(&uri).unwrap();
    assert_eq!(m.name.as_deref(), Some("Big Buck Bunny"));
    assert_eq!(m.trackers, ["http://a/announce", "udp://b:1/x"]);
    assert_eq!(m.web_seeds, ["https://m/d/"]);
    assert_eq!(
        m.peers,
        [
            PeerAddr::Ip("10.0.0.1:6881".parse().unwrap()),
            PeerAddr::Ip("[::1]:7000".parse().unwrap()),
            PeerAddr::Host("peer.example".into(), 51413),
        ]
    );
}

#[test]
fn junk_is_refused_with_a_reason_or_skipped() {
    assert_eq!(Magnet::parse("http://x"), Err(MagnetError::NotMagnet));
    assert_eq!(Magnet::parse("magnet:xt=1"), Err(MagnetError::NotMagnet));
    assert_eq!(Magnet::parse("magnet:?dn=x"), Err(MagnetError::NoInfoHash));
    for bad in [
        "abc",
        "zz7886d42a52ae66da4541d88882a04f9a34a649",
        "LZ4INVBKKKXGNWSFIHMIRAVAJ6NDJJS1",
    ] {
        assert!(
            matches!(
                Magnet::parse(&format!("magnet:?xt=urn:btih:{bad}")),
                Err(MagnetError::BadInfoHash(_))
            ),
            "{bad}"
        );
    }
    let two = format!("magnet:?xt=urn:btih:{BBB}&xt=urn:btih:{}", "00".repeat(20));
    assert!(matches!(
        Magnet::parse(&two),
        Err(MagnetError::TwoInfoHashes(..))
    ));
    let long = format!("magnet:?xt=urn:btih:{BBB}&dn={}", "x".repeat(MAX_URI_LEN));
    assert!(matches!(Magnet::parse(&long), Err(MagnetError::TooLong(_))));
    // Unusable values are skipped; escapes never survive in the name.
    let m = Magnet::parse(&format!(
        "magnet:?xt=urn:btih:{BBB}&dn=%1B%5B31mred%E2%80%AE&tr=not%20a%20url&tr=javascript&ws=&x.pe=a:b:c&&=&x"
    ))
    .unwrap();
    assert_eq!(m.name.as_deref(), Some("?[31mred?"));
    assert!(m.trackers.is_empty() && m.web_seeds.is_empty() && m.peers.is_empty());
}

#[test]
fn bounds_hold() {
    let mut uri = format!("magnet:?xt=urn:btih:{BBB}&dn={}", "n".repeat(1000));
    for i in 0..(MAX_TRACKERS + 10) {
        uri.push_str(&format!("&tr=http://t{i}/a"));
    }
    for i in 0..(MAX_PEERS + 10) {
        uri.push_str(&format!("&x.pe=10.0.{}.{}:1", i / 250, i % 250 + 1));
    }
    let m = Magnet::parse(&uri).unwrap();
    assert_eq!(m.trackers.len(), MAX_TRACKERS);
    assert_eq!(m.peers.len(), MAX_PEERS);
    assert_eq!(m.name.unwrap().len(), MAX_NAME_LEN);
}

#[test]
fn is_magnet_only_for_the_scheme() {
    assert!(Magnet::is_magnet("magnet:?xt=1"));
    assert!(Magnet::is_magnet("Magnet:?xt=1"));
    assert!(!Magnet::is_magnet("magnets.torrent"));
    assert!(!Magnet::is_magnet("mag"));
}

const V2HEX: &str = "d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb";

fn v2() -> InfoHashV2 {
    InfoHashV2::from_hex(V2HEX).unwrap()
}

#[test]
fn a_v2_link_names_its_sha256_and_uses_it_truncated() {
    let m = Magnet::parse(&format!("magnet:?xt=urn:btmh:1220{V2HEX}&dn=x")).unwrap();
    assert_eq!(
        m.ids,
        InfoHashes {
            v1: None,
            v2: Some(v2())
        }
    );
    assert_eq!(m.info_hash, v2().truncated());
    // Upper-case hex and urn, and the same hash twice, are fine.
    let upper = V2HEX.to_uppercase();
    let m = Magnet::parse(&format!(
        "magnet:?xt=URN:BTMH:1220{upper}&xt.1=urn:btmh:1220{V2HEX}"
    ))
    .unwrap();
    assert_eq!(m.ids.v2, Some(v2()));
}

#[test]
fn a_hybrid_link_names_both_and_uses_the_v1_id_first() {
    for uri in [
        format!("magnet:?xt=urn:btih:{BBB}&xt=urn:btmh:1220{V2HEX}"),
        format!("magnet:?xt=urn:btmh:1220{V2HEX}&xt=urn:btih:{BBB}"),
    ] {
        let m = Magnet::parse(&uri).unwrap();
        assert_eq!(
            m.ids,
            InfoHashes {
                v1: Some(hash()),
                v2: Some(v2())
            },
            "{uri}"
        );
        assert_eq!(m.info_hash, hash(), "{uri}");
    }
}

#[test]
fn a_bad_btmh_is_refused_with_a_reason() {
    for bad in [
        format!("1114{V2HEX}"),          // SHA-1 multihash code
        format!("1220{}", &V2HEX[..62]), // short
        format!("1220{V2HEX}00"),        // long
        format!("1220{}zz", &V2HEX[..62]),
        "".to_string(),
        "12".to_string(),
    ] {
        assert!(
            matches!(
                Magnet::parse(&format!("magnet:?xt=urn:btmh:{bad}")),
                Err(MagnetError::BadInfoHashV2(_))
            ),
            "{bad}"
        );
    }
    let two = format!(
        "magnet:?xt=urn:btmh:1220{V2HEX}&xt=urn:btmh:1220{}",
        "00".repeat(32)
    );
    assert!(matches!(
        Magnet::parse(&two),
        Err(MagnetError::TwoInfoHashesV2(..))
    ));
}

#[test]
fn links_we_print_carry_each_hash_the_torrent_has_and_parse_back() {
    let ids = [
        InfoHashes {
            v1: None,
            v2: Some(v2()),
        },
        InfoHashes {
            v1: Some(hash()),
            v2: Some(v2()),
        },
    ];
    let v2_only = magnet_link(&ids[0], "n", [], []);
    assert_eq!(v2_only, format!("magnet:?xt=urn:btmh:1220{V2HEX}&dn=n"));
    let hybrid = magnet_link(&ids[1], "n", [], []);
    assert_eq!(
        hybrid,
        format!("magnet:?xt=urn:btih:{BBB}&xt=urn:btmh:1220{V2HEX}&dn=n")
    );
    for (link, ids) in [(v2_only, ids[0]), (hybrid, ids[1])] {
        assert_eq!(Magnet::parse(&link).unwrap().ids, ids);
    }
}
