//! `pixtorrent-tracker` as a process: answers over HTTP and UDP (read back with pixtorrent's own
//! tracker client), survives malformed requests, bounds what it reads, enforces a whitelist; two
//! processes on one Redis serve one swarm; a Redis outage gives quick failures and `/health` 503,
//! and service comes back by itself when Redis does; past `--max-torrents` / `--max-peers-total` new
//! swarms and peers get a failure (HTTP) or an error packet (UDP), counted in `/metrics`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use pixtorrent::tracker::http::{parse_announce, parse_scrape};
use pixtorrent::types::InfoHash;

use common::servers::{Redis, TrackerProc};

fn bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_pixtorrent-tracker"))
}

/// One HTTP/1.0 GET; (status, body). Bounded by a 10 s read timeout.
fn get(addr: SocketAddr, target: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {target} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no HTTP reply to {target}: {:?}",
                String::from_utf8_lossy(&raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, raw[end + 4..].to_vec())
}

fn esc(b: &[u8]) -> String {
    b.iter().map(|x| format!("%{x:02X}")).collect()
}

fn announce_target(hash: [u8; 20], peer: u8, port: u16, left: u64, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&left={left}&uploaded=0&downloaded=0{extra}",
        esc(&hash),
        esc(&[peer; 20])
    )
}

fn failure(body: &[u8]) -> Option<String> {
    match parse_announce(body) {
        Err(pixtorrent::tracker::TrackerError::Failure(why)) => Some(why),
        _ => None,
    }
}

#[test]
fn answers_clients_and_survives_bad_requests() {
    let t = TrackerProc::start(bin(), &["--interval", "60"]);
    let hash = [0x2b; 20]; // '+' bytes: must not turn into spaces
    let (status, body) = get(t.http, &announce_target(hash, 1, 6001, 0, "&event=started"));
    assert_eq!(status, 200);
    let r = parse_announce(&body).unwrap();
    assert_eq!(
        (r.seeders, r.leechers, r.interval, r.min_interval),
        (Some(1), Some(0), Some(60), Some(30))
    );
    assert!(r.peers.is_empty(), "the requester itself was returned");
    // Raw (unescaped) '+' in the query is the byte 0x2b, the same torrent.
    let raw_plus = format!(
        "/announce?info_hash={}&peer_id={}&port=6002&left=5",
        "+".repeat(20),
        esc(&[2; 20])
    );
    let r = parse_announce(&get(t.http, &raw_plus).1).unwrap();
    assert_eq!(
        r.peers,
        vec!["127.0.0.1:6001".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!((r.seeders, r.leechers), (Some(1), Some(1)));
    // Dictionary form.
    let (_, body) = get(t.http, &announce_target(hash, 3, 6003, 5, "&compact=0"));
    assert!(body.windows(7).any(|w| w == b"peer id"));
    assert_eq!(parse_announce(&body).unwrap().peers.len(), 2);
    // Scrape, several hashes.
    let (_, body) = get(
        t.http,
        &format!(
            "/scrape?info_hash={}&info_hash={}",
            esc(&hash),
            esc(&[9; 20])
        ),
    );
    let s = parse_scrape(&body).unwrap();
    assert_eq!(
        (s[&InfoHash(hash)].complete, s[&InfoHash(hash)].incomplete),
        (1, 2)
    );
    assert_eq!(s[&InfoHash([9; 20])].complete, 0);

    // Malformed requests: a failure reason each, HTTP 200, and the process lives on.
    let long = format!("/announce?{}", "a".repeat(9000));
    let bad = [
        "/announce".to_string(),
        "/announce?info_hash=short&peer_id=x&port=1".to_string(),
        announce_target(hash, 4, 0, 0, ""),
        announce_target(hash, 4, 6004, 0, "&left=-1"),
        announce_target(hash, 4, 6004, 0, "&event=%ff%fe"),
        "/announce?%zz%=&&=&info_hash".to_string(),
        "/scrape".to_string(),
        long,
    ];
    for target in &bad {
        let (status, body) = get(t.http, target);
        assert_eq!(status, 200, "{target}");
        assert!(
            failure(&body).is_some(),
            "{target}: {:?}",
            String::from_utf8_lossy(&body)
        );
    }
    // Garbage that is not HTTP at all, and a request line far past any sane size.
    for junk in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"[..],
        &vec![b'A'; 1 << 20],
    ] {
        let mut s = TcpStream::connect(t.http).unwrap();
        let _ = s.write_all(junk);
    }
    let (status, body) = get(t.http, "/health");
    assert_eq!(
        (status, String::from_utf8_lossy(&body).trim()),
        (200, "ok (memory)")
    );
    // UDP on the same store: the two HTTP peers and the dict-form one are there.
    let r = udp_announce(&t.udp_url(), hash, 5);
    assert_eq!(r.peers.len(), 3);
    assert_eq!((r.seeders, r.leechers), (Some(1), Some(3)));
    let (_, body) = get(t.http, "/stats");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (
            v["torrents"].as_u64(),
            v["seeders"].as_u64(),
            v["leechers"].as_u64()
        ),
        (Some(1), Some(1), Some(3))
    );
    let (_, body) = get(t.http, "/metrics");
    let metrics = String::from_utf8_lossy(&body);
    assert!(
        metrics.contains("pixtorrent_tracker_seeders 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pixtorrent_tracker_store_up 1"),
        "{metrics}"
    );
}

#[test]
fn whitelist_refuses_other_torrents() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("wl");
    std::fs::write(&list, format!("# ours\n{}\n", "ab".repeat(20))).unwrap();
    let t = TrackerProc::start(bin(), &["--whitelist", list.to_str().unwrap()]);
    let ok = get(t.http, &announce_target([0xab; 20], 1, 6001, 0, "")).1;
    assert!(parse_announce(&ok).is_ok());
    let refused = get(t.http, &announce_target([0xac; 20], 1, 6001, 0, "")).1;
    assert!(failure(&refused).unwrap().contains("whitelist"));
    // A broken whitelist stops the start with one line.
    std::fs::write(&list, "nothex\n").unwrap();
    let o = std::process::Command::new(bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--whitelist",
            list.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: whitelist") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn two_trackers_on_one_redis_serve_one_swarm() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let a = TrackerProc::start(bin(), &["--redis", &url]);
    let b = TrackerProc::start(bin(), &["--redis", &url]);
    let hash = [0x42; 20];
    get(a.http, &announce_target(hash, 1, 6001, 0, "&event=started"));
    let r = parse_announce(
        &get(
            b.http,
            &announce_target(hash, 2, 6002, 100, "&event=started"),
        )
        .1,
    )
    .unwrap();
    assert_eq!(
        r.peers,
        vec!["127.0.0.1:6001".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!((r.seeders, r.leechers), (Some(1), Some(1)));
    // Over UDP on A, with pixtorrent's own UDP client: sees both, whoever registered them.
    let r = udp_announce(&a.udp_url(), hash, 3);
    let mut got = r.peers.clone();
    got.sort();
    let want: Vec<SocketAddr> = ["127.0.0.1:6001", "127.0.0.1:6002"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(got, want);
    assert_eq!((r.seeders, r.leechers), (Some(1), Some(2)));
    let (_, body) = get(b.http, &format!("/scrape?info_hash={}", esc(&hash)));
    let s = parse_scrape(&body).unwrap()[&InfoHash(hash)];
    assert_eq!((s.complete, s.incomplete), (1, 2));
}

/// A UDP announce (leecher, port 7000) with pixtorrent's client, bounded by 2 s per try.
fn udp_announce(url: &str, hash: [u8; 20], peer: u8) -> pixtorrent::tracker::AnnounceResponse {
    udp_try(url, hash, peer).unwrap()
}

/// As [`udp_announce`], with the client's error (an error packet is `TrackerError::Failure`).
fn udp_try(
    url: &str,
    hash: [u8; 20],
    peer: u8,
) -> Result<pixtorrent::tracker::AnnounceResponse, pixtorrent::tracker::TrackerError> {
    use pixtorrent::tracker::{udp::UdpTracker, AnnounceRequest, Event, TrackerConfig};
    let cfg = TrackerConfig {
        udp_base_timeout: Duration::from_secs(1),
        udp_max_retries: 1,
        ..TrackerConfig::default()
    };
    let req = AnnounceRequest {
        info_hash: InfoHash(hash),
        peer_id: pixtorrent::types::PeerId([peer; 20]),
        port: 7000,
        uploaded: 0,
        downloaded: 0,
        left: 10,
        event: Event::Started,
        numwant: Some(50),
        key: 1,
        tracker_id: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { UdpTracker::new(url).unwrap().announce(&cfg, &req).await })
}

/// The value of one `/metrics` line (`series` is the name with its labels).
fn metric(t: &TrackerProc, series: &str) -> Option<u64> {
    let body = get(t.http, "/metrics").1;
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn bounds_refuse_new_swarms_and_peers_over_http_and_udp() {
    // One bound from the command line, the other from the environment.
    let t = TrackerProc::start_env(
        bin(),
        &["--max-torrents", "1"],
        &[("PIXTORRENT_TRACKER_MAX_PEERS_TOTAL", "2")],
    );
    let (ha, hb) = ([0x51; 20], [0x52; 20]);
    let torrents = "pixtorrent_tracker_refused_total{reason=\"max_torrents\"}";
    let peers = "pixtorrent_tracker_refused_total{reason=\"max_peers_total\"}";
    assert_eq!(
        (metric(&t, torrents), metric(&t, peers)),
        (Some(0), Some(0))
    );
    let ok = get(t.http, &announce_target(ha, 1, 6001, 0, "&event=started")).1;
    assert!(parse_announce(&ok).is_ok());
    // A second torrent: a bencoded failure reason over HTTP, an error packet over UDP.
    let (status, body) = get(t.http, &announce_target(hb, 2, 6002, 0, "&event=started"));
    assert_eq!(status, 200);
    let why = failure(&body).unwrap();
    assert_eq!(
        why,
        "tracker full: it holds at most 1 torrents; try again later"
    );
    match udp_try(&t.udp_url(), hb, 3) {
        Err(pixtorrent::tracker::TrackerError::Failure(m)) => assert_eq!(m, why),
        other => panic!("UDP announce past --max-torrents: {other:?}"),
    }
    // The known torrent takes a second peer (over UDP), then no third one.
    assert_eq!(udp_announce(&t.udp_url(), ha, 4).peers.len(), 1);
    let why = failure(&get(t.http, &announce_target(ha, 5, 6005, 9, "")).1).unwrap();
    assert_eq!(
        why,
        "tracker full: it holds at most 2 peers; try again later"
    );
    assert!(matches!(
        udp_try(&t.udp_url(), ha, 6),
        Err(pixtorrent::tracker::TrackerError::Failure(m)) if m == why
    ));
    // Peers already in keep announcing; one that stops makes room for another.
    let r = parse_announce(&get(t.http, &announce_target(ha, 1, 6001, 0, "")).1).unwrap();
    assert_eq!((r.seeders, r.leechers), (Some(1), Some(1)));
    get(t.http, &announce_target(ha, 1, 6001, 0, "&event=stopped"));
    let r = parse_announce(&get(t.http, &announce_target(ha, 5, 6005, 9, "")).1).unwrap();
    assert_eq!((r.seeders, r.leechers), (Some(0), Some(2)));
    // Each refusal counted once, by its bound; the store holds what it should.
    assert_eq!(
        (metric(&t, torrents), metric(&t, peers)),
        (Some(2), Some(2))
    );
    assert_eq!(metric(&t, "pixtorrent_tracker_torrents"), Some(1));
    assert_eq!(metric(&t, "pixtorrent_tracker_leechers"), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&get(t.http, "/stats").1).unwrap();
    assert_eq!(
        (
            v["refused_max_torrents_total"].as_u64(),
            v["refused_max_peers_total"].as_u64()
        ),
        (Some(2), Some(2))
    );
    // A bound of 0 would refuse everything: the command line says so at once.
    let o = std::process::Command::new(bin())
        .args(["--listen", "127.0.0.1:0", "--max-peers-total", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn redis_outage_fails_fast_and_recovers_by_itself() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let t = TrackerProc::start(bin(), &["--redis", &redis.url()]);
    let hash = [0x77; 20];
    assert!(parse_announce(&get(t.http, &announce_target(hash, 1, 6001, 0, "")).1).is_ok());
    redis.stop();
    let start = Instant::now();
    let (status, body) = get(t.http, &announce_target(hash, 2, 6002, 0, ""));
    let took = start.elapsed();
    assert_eq!(status, 200);
    let why = failure(&body).unwrap_or_else(|| {
        panic!(
            "no failure while Redis is down: {:?}",
            String::from_utf8_lossy(&body)
        )
    });
    assert!(why.contains("unavailable"), "{why}");
    assert!(
        took < Duration::from_secs(5),
        "a failed announce took {took:?}"
    );
    let (status, body) = get(t.http, "/health");
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    redis.restart();
    // Bounded: 30 tries over about 15 s.
    let mut back = false;
    for _ in 0..30 {
        if parse_announce(&get(t.http, &announce_target(hash, 3, 6003, 0, "")).1).is_ok() {
            back = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(back, "announces still fail after Redis came back");
    assert_eq!(get(t.http, "/health").0, 200);
}
