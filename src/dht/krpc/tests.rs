//! KRPC codec: the BEP 5 examples byte for byte, every message round-tripped, errors and junk.
use super::*;

fn id(b: u8) -> NodeId {
    NodeId([b; 20])
}

fn round_trip(m: Message) {
    let bytes = m.encode();
    assert_eq!(
        Message::parse(&bytes).unwrap(),
        m,
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
}

#[test]
fn bep5_ping_examples_parse_and_encode_byte_for_byte() {
    let q = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    let m = Message::parse(q).unwrap();
    assert_eq!(m.tid, b"aa");
    assert_eq!(
        m.body,
        Body::Query {
            id: NodeId(*b"abcdefghij0123456789"),
            query: Query::Ping
        }
    );
    assert_eq!(m.encode(), q.to_vec());
    let r = b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re";
    let m = Message::parse(r).unwrap();
    let Body::Response(resp) = &m.body else {
        panic!()
    };
    assert_eq!(resp.id, Some(NodeId(*b"mnopqrstuvwxyz123456")));
    assert_eq!(m.encode(), r.to_vec());
}

#[test]
fn bep5_get_peers_and_announce_examples_parse() {
    let q = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe";
    let m = Message::parse(q).unwrap();
    assert!(matches!(
        m.body,
        Body::Query {
            query: Query::GetPeers { .. },
            ..
        }
    ));
    assert_eq!(m.encode(), q.to_vec());
    let r = b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re";
    let m = Message::parse(r).unwrap();
    let Body::Response(resp) = &m.body else {
        panic!()
    };
    assert_eq!(resp.values.len(), 2);
    assert_eq!(resp.token.as_deref(), Some(&b"aoeusnth"[..]));
    let a = b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe";
    let m = Message::parse(a).unwrap();
    assert_eq!(
        m.body,
        Body::Query {
            id: NodeId(*b"abcdefghij0123456789"),
            query: Query::AnnouncePeer {
                info_hash: NodeId(*b"mnopqrstuvwxyz123456"),
                port: 6881,
                implied_port: true,
                token: b"aoeusnth".to_vec(),
            }
        }
    );
    let e = b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee";
    let m = Message::parse(e).unwrap();
    assert_eq!(
        m.body,
        Body::Error {
            code: 201,
            message: "A Generic Error Ocurred".into()
        }
    );
    assert_eq!(m.encode(), e.to_vec());
}

#[test]
fn every_message_round_trips() {
    let want = Want { v4: true, v6: true };
    let queries = [
        Query::Ping,
        Query::FindNode {
            target: id(2),
            want,
        },
        Query::GetPeers {
            info_hash: id(3),
            want: Want::default(),
        },
        Query::AnnouncePeer {
            info_hash: id(4),
            port: 51413,
            implied_port: false,
            token: vec![1, 2, 3, 4],
        },
    ];
    for query in queries {
        round_trip(Message {
            tid: vec![0, 1],
            body: Body::Query { id: id(1), query },
            ip: None,
            version: Some(b"PX01".to_vec()),
        });
    }
    let v4addr = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 6881);
    let v6addr = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 6882, 0, 0);
    round_trip(Message {
        tid: b"xy".to_vec(),
        body: Body::Response(Response {
            id: Some(id(9)),
            nodes: vec![(id(5), v4addr), (id(6), v4addr)],
            nodes6: vec![(id(7), v6addr)],
            values: vec![SocketAddr::V4(v4addr), SocketAddr::V6(v6addr)],
            token: Some(b"tok".to_vec()),
        }),
        ip: Some(SocketAddr::V4(v4addr)),
        version: None,
    });
}

#[test]
fn unknown_methods_are_kept_to_be_answered_with_an_error() {
    let q = b"d1:ad2:id20:abcdefghij0123456789e1:q3:put1:t2:aa1:y1:qe";
    let m = Message::parse(q).unwrap();
    assert!(matches!(
        m.body,
        Body::Query {
            query: Query::Other(ref s),
            ..
        } if s == "put"
    ));
}

#[test]
fn malformed_messages_are_errors_never_panics() {
    let cases: &[&[u8]] = &[
        b"",
        b"garbage",
        b"d1:t2:aae",                                                  // no y
        b"d1:t2:aa1:y1:xe",                                            // unknown y
        b"d1:t2:aa1:y1:qe",                                            // query without q/a
        b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",                     // short id
        b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe", // no target
        b"d1:rle1:t2:aa1:y1:re",                                       // r not a dict
        b"d1:rd2:id20:abcdefghij0123456789e1:ti5e1:y1:re",             // t not a string
        b"d1:eli201ee1:t2:aa1:y1:ee",                                  // error without message: ok
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234565:token2:aae1:q13:announce_peer1:t2:aa1:y1:qe", // no port
    ];
    let mut ok = 0;
    for c in cases {
        if Message::parse(c).is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 1, "only the error without a message parses");
}

#[test]
fn bounds_are_enforced() {
    let long_tid = format!(
        "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t40:{}1:y1:qe",
        "a".repeat(40)
    );
    assert_eq!(
        Message::parse(long_tid.as_bytes()),
        Err(KrpcError::Bounds("t"))
    );
    // Over the datagram limit.
    let huge = format!(
        "d1:t2:aa1:y1:r1:rd2:id20:abcdefghij01234567895:nodes9000:{}ee",
        "x".repeat(9000)
    );
    assert!(matches!(
        Message::parse(huge.as_bytes()),
        Err(KrpcError::Bencode(_))
    ));
    // Too many nodes are cut to MAX_NODES; a ragged tail is ignored.
    let mut nodes = Vec::new();
    for i in 0..40u8 {
        nodes.extend_from_slice(&[i; 20]);
        nodes.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1]);
    }
    nodes.extend_from_slice(b"ragged");
    let m = Message {
        tid: b"aa".to_vec(),
        body: Body::Response(Response::default()),
        ip: None,
        version: None,
    };
    let mut bytes = m.encode();
    let tail = format!("2:id20:abcdefghij01234567895:nodes{}:", nodes.len());
    let at = bytes.windows(3).position(|w| w == b"1:r").unwrap() + 3;
    bytes.splice(at..at + 2, []);
    let mut body = b"d".to_vec();
    body.extend_from_slice(tail.as_bytes());
    body.extend_from_slice(&nodes);
    body.push(b'e');
    bytes.splice(at..at, body);
    let parsed = Message::parse(&bytes).unwrap();
    let Body::Response(r) = parsed.body else {
        panic!()
    };
    assert_eq!(r.nodes.len(), MAX_NODES);
}

#[test]
fn compact_addresses() {
    let a: SocketAddr = "1.2.3.4:5".parse().unwrap();
    assert_eq!(compact_addr(&encode_addr(&a)), Some(a));
    let b: SocketAddr = "[::1]:6881".parse().unwrap();
    assert_eq!(compact_addr(&encode_addr(&b)), Some(b));
    assert_eq!(compact_addr(&[1, 2, 3]), None);
}
