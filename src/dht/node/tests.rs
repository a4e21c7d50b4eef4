//! Three real nodes on loopback, IPv4 and IPv6 (BEP 32): two bootstrap from the first, one
//! announces a peer, the third finds it with a `get_peers` lookup.
use super::*;

fn config(ip: &str, bootstrap: Vec<String>) -> DhtConfig {
    DhtConfig {
        net: Bind::new(ip.parse().unwrap(), None),
        port: 0,
        bootstrap,
        allow_local: true,
        state: None,
    }
}

async fn trio(ip: &str) {
    let a = Dht::start(config(ip, vec![])).await.unwrap();
    let a_addr = a.local_addrs()[0];
    let b = Dht::start(config(ip, vec![a_addr.to_string()]))
        .await
        .unwrap();
    let c = Dht::start(config(ip, vec![a_addr.to_string()]))
        .await
        .unwrap();
    for _ in 0..100 {
        if b.nodes() >= 1 && c.nodes() >= 1 && a.nodes() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a.nodes() >= 2, "a learned b and c from their queries");
    let hash = NodeId([7; 20]);
    b.get_peers(hash, Some(7000), |_| {}).await;
    let want = SocketAddr::new(ip.parse().unwrap(), 7000);
    let mut found = Vec::new();
    for _ in 0..20 {
        let mut early = Vec::new();
        found = c
            .get_peers(hash, None, |p| early.extend_from_slice(p))
            .await;
        if found.contains(&want) {
            assert!(early.contains(&want), "handed out as it came");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found.contains(&want), "{found:?}");
}

#[tokio::test]
async fn nodes_on_ipv4_loopback_store_and_find_an_announced_peer() {
    trio("127.0.0.1").await;
}

#[tokio::test]
async fn nodes_on_ipv6_loopback_store_and_find_an_announced_peer() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback on this host");
        return;
    }
    trio("::1").await;
}

#[tokio::test]
async fn an_unknown_method_gets_error_204_and_junk_no_answer() {
    let a = Dht::start(config("127.0.0.1", vec![])).await.unwrap();
    let to = a.local_addrs()[0];
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(b"not bencode at all", to).await.unwrap();
    let q = b"d1:ad2:id20:abcdefghij0123456789e1:q3:put1:t2:aa1:y1:qe";
    s.send_to(q, to).await.unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), s.recv_from(&mut buf))
        .await
        .expect("an answer to the query")
        .unwrap();
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(m.tid, b"aa", "the junk got no answer; the query did");
    assert!(
        matches!(m.body, Body::Error { code: 204, .. }),
        "{:?}",
        m.body
    );
}
