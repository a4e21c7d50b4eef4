//! One process, several torrents (issue 13): two `.torrent`s and one magnet link, each seeded by a
//! different real client (python3-libtorrent, aria2c, Transmission in a namespace of the test's own),
//! all complete in one `pixtorrent` run on one listening port, and an incoming connection for each
//! torrent is answered by that torrent while one for another torrent is refused.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use common::netns::NetNs;
use common::seeders::{free_port_on, Aria2Seeder, LtOptions, LtPeer, Proc, Transmission};
use common::{tool, wait_for_seeders, Opentracker};
use pixtorrent::metainfo::Metainfo;
use pixtorrent::types::InfoHash;

const SIZE: usize = 64 * 1024 * 1024;

/// `dir/seed/NAME` of `SIZE` bytes seeded from `n`, and its torrent announcing to `tracker`.
fn item(dir: &Path, name: &str, n: u64, tracker: &str) -> (PathBuf, InfoHash) {
    let seed = dir.join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let data: Vec<u8> = (0..SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(seed.join(name), &data).unwrap();
    let torrent = dir.join(format!("{name}.torrent"));
    let out = common::px()
        .arg("create")
        .arg(seed.join(name))
        .arg("-o")
        .arg(&torrent)
        .args(["--tracker", tracker, "--piece-size", "262144"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    (torrent, meta.info_hash)
}

/// Opens a connection to `px` with a handshake for `hash`; the info-hash of the handshake it
/// answers with, or `None` if it hangs up.
fn handshake_reply(px: SocketAddr, hash: InfoHash) -> Option<[u8; 20]> {
    let mut s = TcpStream::connect_timeout(&px, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut hs = vec![19u8];
    hs.extend_from_slice(b"BitTorrent protocol");
    hs.extend_from_slice(&[0; 8]);
    hs.extend_from_slice(&hash.0);
    hs.extend_from_slice(b"-XX0001-routingtest!");
    s.write_all(&hs).ok()?;
    let mut reply = [0u8; 68];
    s.read_exact(&mut reply).ok()?;
    let mut got = [0u8; 20];
    got.copy_from_slice(&reply[28..48]);
    Some(got)
}

#[test]
fn two_torrents_and_a_magnet_in_one_process_on_one_port() {
    for t in [
        "aria2c",
        "transmission-daemon",
        "transmission-remote",
        "opentracker",
    ] {
        if tool(t).is_none() {
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(ns) = NetNs::create() else { return };
    let hashes_dir = dir.path().join("probe");
    std::fs::create_dir_all(&hashes_dir).unwrap();
    // The info-hashes do not depend on the tracker URL: learn them first, for the whitelist.
    let probe = |name: &str, n: u64| item(&hashes_dir, name, n, "http://127.0.0.1:9/announce").1;
    let hashes = [probe("a.bin", 1), probe("b.bin", 2), probe("c.bin", 3)];
    let Some(tracker) = Opentracker::start_on(&hashes, &[ns.host_ip, ns.host_ip2]) else {
        return;
    };
    let url = tracker.http_on(ns.host_ip);
    let (ta, ha) = item(dir.path(), "a.bin", 1, &url);
    let (tb, hb) = item(dir.path(), "b.bin", 2, &tracker.http_on(ns.host_ip2));
    let (tc, hc) = item(dir.path(), "c.bin", 3, &url);
    let seed = dir.path().join("seed");
    // Each torrent has its own seeder, each a different client, each held to ~4 MB/s so the
    // downloads overlap.
    let lt_opts = LtOptions {
        ip: IpAddr::V4(ns.host_ip),
        upload_limit: 4_000_000,
        ..LtOptions::default()
    };
    let Some(mut lt) = LtPeer::start(&ta, &seed, &lt_opts) else {
        return;
    };
    let Some(aria2) = Aria2Seeder::start(&tb, &seed, ns.host_ip2, 4_000_000) else {
        return;
    };
    let Some(transmission) = Transmission::seed(&ns, &tc, hc, &seed, 4000) else {
        return;
    };
    for h in [ha, hc] {
        wait_for_seeders(&url, h, 1, Duration::from_secs(60));
    }
    wait_for_seeders(
        &tracker.http_on(ns.host_ip2),
        hb,
        1,
        Duration::from_secs(60),
    );
    // One pixtorrent: two torrent files and the third torrent as a magnet link.
    let magnet = format!(
        "magnet:?xt=urn:btih:{hc}&dn=c.bin&tr={}",
        url.replace(':', "%3A").replace('/', "%2F")
    );
    let out = dir.path().join("out");
    let port = free_port_on(IpAddr::V4(ns.host_ip));
    let mut cmd = common::px();
    cmd.arg("-o")
        .arg(&out)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            &ns.host_ip.to_string(),
            "-v",
        ])
        .arg("-t")
        .arg(&ta)
        .arg(&tb)
        .arg(&magnet)
        .env("PIXTORRENT_PROGRESS_SECS", "1");
    let mut px = Proc::spawn("pixtorrent", cmd);
    let px_addr = SocketAddr::new(IpAddr::V4(ns.host_ip), port);
    // While they run: a handshake for each torrent is answered by that torrent; one for a torrent
    // the process does not have is refused.
    let start = Instant::now();
    let mut routed = [false; 3];
    while routed.iter().any(|r| !r) && start.elapsed() < Duration::from_secs(20) {
        for (k, h) in [ha, hb, hc].into_iter().enumerate() {
            if !routed[k] {
                routed[k] = handshake_reply(px_addr, h) == Some(h.0);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        routed,
        [true; 3],
        "each torrent answered on the one port\n{}",
        px.dump(30)
    );
    assert_eq!(
        handshake_reply(px_addr, InfoHash([0x55; 20])),
        None,
        "unknown torrent refused"
    );
    let status = px.wait_exit(Duration::from_secs(120));
    assert!(
        status.is_some_and(|s| s.success()),
        "pixtorrent: {status:?}\n{}",
        px.dump(40)
    );
    for name in ["a.bin", "b.bin", "c.bin"] {
        let want = std::fs::read(seed.join(name)).unwrap();
        let got = std::fs::read(out.join(name)).unwrap_or_default();
        assert!(want == got, "{name} differs");
    }
    let summary = px.stdout().join("\n");
    for name in ["a.bin", "b.bin", "c.bin"] {
        assert!(summary.contains(&format!("Completed {name}:")), "{summary}");
    }
    let log = px.stderr().join("\n");
    assert!(
        log.contains("progress: a.bin: ") || log.contains("Completed"),
        "named progress lines"
    );
    lt.stop();
    drop(aria2);
    drop(transmission);
}

#[test]
fn a_failed_torrent_is_named_and_the_others_still_complete() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    std::fs::write(good.join("g.bin"), vec![1u8; 100_000]).unwrap();
    let torrent = dir.path().join("g.torrent");
    let out = common::px()
        .arg("create")
        .arg(good.join("g.bin"))
        .arg("-o")
        .arg(&torrent)
        .args(["--tracker", "http://127.0.0.1:9/announce"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // The good one is already complete in the output directory; the other does not exist.
    let out = common::px()
        .arg("-o")
        .arg(&good)
        .args(["--port", "0"])
        .arg(&torrent)
        .arg(dir.path().join("missing.torrent"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(stdout.contains("Completed g.bin:"), "{stdout}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: ") && l.contains("missing.torrent")),
        "{err}"
    );
}
