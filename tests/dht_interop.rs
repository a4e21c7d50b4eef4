//! The DHT (BEP 5) against a local DHT of python3-libtorrent sessions on 127.0.0.1
//! (`tests/peers/lt_dht.py`), with no tracker anywhere and no public router: pixtorrent opens a
//! magnet link with no `tr` through the DHT alone, and a restart bootstraps from the routing table
//! it saved; with `--no-dht` the same link fails at once.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::payload::{assert_same_tree, Payload, SMALL};
use common::seeders::{free_port_on, python_with_libtorrent, script, Proc};
use common::{expect_success, px};

/// A local DHT of `nodes` libtorrent sessions, with the `extra` arguments of `lt_dht.py`; its
/// `READY` line.
fn local_dht(nodes: usize, extra: &[&std::ffi::OsStr]) -> Option<(Proc, String)> {
    let python = python_with_libtorrent()?;
    let mut cmd = Command::new(python);
    cmd.arg(script("lt_dht.py"))
        .args(["--nodes", &nodes.to_string()])
        .args(extra)
        .args(["--parent-pid", &std::process::id().to_string()])
        .stdin(Stdio::piped());
    let mut dht = Proc::spawn("libtorrent DHT", cmd);
    let ready = dht.wait_line(Duration::from_secs(60), |l| l.starts_with("READY"));
    let Some(ready) = ready else {
        panic!("the local DHT did not settle\n{}", dht.dump(20));
    };
    Some((dht, ready))
}

/// `pixtorrent MAGNET_OR_TORRENT -o OUT` on the DHT (state in `state`), bootstrapped from `bootstrap`.
fn pixtorrent_dht(magnet: &str, out: &Path, state: &Path, bootstrap: Option<&str>) -> Proc {
    let port = free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut cmd = px();
    cmd.env_remove("PIXTORRENT_NO_DHT")
        .env("XDG_STATE_HOME", state)
        .arg(magnet)
        .arg("-o")
        .arg(out)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "-v"])
        .env("PIXTORRENT_PROGRESS_SECS", "1");
    if let Some(b) = bootstrap {
        cmd.args(["--dht-bootstrap", b]);
    }
    Proc::spawn("pixtorrent", cmd)
}

/// A payload, and a local DHT of 16 libtorrent sessions whose last one seeds it; with node 0's
/// address.
fn seeded_dht(dir: &Path) -> Option<(Payload, Proc, String)> {
    let payload = Payload::generate(dir, SMALL, "http://127.0.0.1:9/announce");
    let seed = [
        "--seed-torrent".as_ref(),
        payload.torrent.as_os_str(),
        "--seed-dir".as_ref(),
        payload.save_dir.as_os_str(),
    ];
    let (dht, ready) = local_dht(16, &seed)?;
    let node0 = node0(&ready);
    Some((payload, dht, node0))
}

fn node0(ready: &str) -> String {
    ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("node0="))
        .expect("node0 in READY")
        .to_string()
}

fn dht_bytes(summary: &str) -> Option<u64> {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("peers by source:"))?;
    line.split("dht ")
        .nth(1)?
        .split('(')
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

#[test]
fn trackerless_magnets_and_torrents_download_through_the_dht_and_a_restart_needs_no_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, mut dht, node0)) = seeded_dht(dir.path()) else {
        return;
    };
    let magnet = format!("magnet:?xt=urn:btih:{}", payload.info_hash);
    let state = dir.path().join("state");
    let out = dir.path().join("out1");
    let mut px1 = pixtorrent_dht(&magnet, &out, &state, Some(&node0));
    expect_success(&mut px1, Duration::from_secs(120));
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    let summary = px1.stdout().join("\n");
    assert!(
        dht_bytes(&summary).is_some_and(|b| b >= payload.total),
        "the data came from a peer found through the DHT: {summary}"
    );
    let saved = state.join("pixtorrent/dht.dat");
    assert!(saved.is_file(), "routing table saved at {saved:?}");
    // A restart into a fresh directory (so no saved .torrent), with no --dht-bootstrap: the saved
    // table is the only way into the DHT.
    let out2 = dir.path().join("out2");
    let started = Instant::now();
    let mut px2 = pixtorrent_dht(&magnet, &out2, &state, None);
    expect_success(&mut px2, Duration::from_secs(120));
    assert_same_tree(&payload.root(), &out2.join(payload.name()));
    eprintln!("restart from the saved table: {:.1?}", started.elapsed());
    // A trackerless .torrent (no announce, no url-list) downloads through the DHT too.
    let trackerless = payload.trackerless_torrent(&dir.path().join("trackerless.torrent"));
    let out3 = dir.path().join("out3");
    let mut px3 = pixtorrent_dht(trackerless.to_str().unwrap(), &out3, &state, None);
    expect_success(&mut px3, Duration::from_secs(120));
    assert_same_tree(&payload.root(), &out3.join(payload.name()));
    dht.stop();
}

#[test]
fn without_the_dht_a_trackerless_magnet_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = px()
        .arg("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567")
        .arg("-o")
        .arg(dir.path())
        .args(["--port", "0", "--no-dht"])
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the DHT is off"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
}

#[test]
fn the_public_routers_are_forbidden_under_the_test_suite() {
    // What keeps every other test off the public DHT: with the DHT on and no local bootstrap, the
    // guard variable turns the run into an error before any socket is opened.
    let dir = tempfile::tempdir().unwrap();
    let out = px()
        .env_remove("PIXTORRENT_NO_DHT")
        .env("XDG_STATE_HOME", dir.path())
        .arg("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567")
        .arg("-o")
        .arg(dir.path())
        .args(["--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PIXTORRENT_FORBID_PUBLIC_DHT"), "{err}");
}

#[test]
fn a_libtorrent_leecher_with_only_the_magnet_finds_pixtorrent_through_the_dht() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    let magnet = format!("magnet:?xt=urn:btih:{}", payload.info_hash);
    let leech_dir = dir.path().join("lt");
    std::fs::create_dir_all(&leech_dir).unwrap();
    // A DHT with no seeder; its extra session leeches the magnet, re-asking the DHT every 10 s.
    let leech = [
        "--leech-magnet".as_ref(),
        magnet.as_ref(),
        "--leech-dir".as_ref(),
        leech_dir.as_os_str(),
    ];
    let Some((mut dht, ready)) = local_dht(16, &leech) else {
        return;
    };
    let node0 = node0(&ready);
    // pixtorrent seeds it (its tracker is dead) and announces itself to the DHT.
    let port = free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut cmd = px();
    cmd.env_remove("PIXTORRENT_NO_DHT")
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .arg("-t")
        .arg(&payload.torrent)
        .arg("-o")
        .arg(&payload.save_dir)
        .args(["--seed", "--seed-time", "120", "--port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--dht-bootstrap", &node0, "-v"]);
    let mut seeder = Proc::spawn("pixtorrent seeder", cmd);
    let done = dht.wait_line(Duration::from_secs(90), |l| l.starts_with("DONE"));
    let lines = dht.stdout();
    dht.stop();
    seeder.stop();
    assert!(
        done.is_some(),
        "the libtorrent leecher did not complete: {lines:?}\n{}",
        seeder.dump(30)
    );
    // No other peer has the data: the leecher can only have found pixtorrent, through the DHT.
    let log = seeder.stderr().join("\n");
    assert!(
        log.lines().any(|l| l.contains("connected")
            && l.contains("libtorrent")
            && l.contains("source=incoming")),
        "pixtorrent saw the libtorrent leecher connect\n{}",
        seeder.dump(30)
    );
    assert_same_tree(&payload.root(), &leech_dir.join(payload.name()));
}

fn bad_node(extra: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(script("bad_dht.py"))
        .args(extra)
        .args(["--parent-pid", &std::process::id().to_string()])
        .stdin(Stdio::piped());
    let mut p = Proc::spawn("hostile DHT node", cmd);
    p.grace = Duration::from_secs(3);
    let ready = p
        .wait_line(Duration::from_secs(10), |l| l.starts_with("READY"))
        .expect("hostile node ready");
    let port = ready.trim_start_matches("READY port=").to_string();
    (p, format!("127.0.0.1:{port}"))
}

#[test]
fn a_hostile_dht_node_neither_stops_the_download_nor_gets_past_the_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, mut dht, node0)) = seeded_dht(dir.path()) else {
        return;
    };
    // Bootstrapped from the liar first: it answers pings well (so it enters the table) and every
    // other query with garbage, a 60 KB reply, a wrong transaction id or silence.
    let (mut liar, liar_addr) = bad_node(&[]);
    let magnet = format!("magnet:?xt=urn:btih:{}", payload.info_hash);
    let out = dir.path().join("out");
    let port = free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut cmd = px();
    cmd.env_remove("PIXTORRENT_NO_DHT")
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .arg(&magnet)
        .arg("-o")
        .arg(&out)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--seed", "--seed-time", "6"])
        .args([
            "--dht-bootstrap",
            &liar_addr,
            "--dht-bootstrap",
            &node0,
            "-v",
        ]);
    let mut pixtorrent = Proc::spawn("pixtorrent", cmd);
    // Meanwhile another source floods pixtorrent's DHT port with 3000 pings in a burst.
    let target = format!("127.0.0.1:{port}");
    let (mut flooder, _) = bad_node(&["--flood", &target, "--flood-secs", "3"]);
    let flood = flooder.wait_line(Duration::from_secs(20), |l| l.starts_with("FLOOD"));
    expect_success(&mut pixtorrent, Duration::from_secs(90));
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    flooder.stop();
    liar.stop();
    dht.stop();
    let flood = flood.expect("flood report");
    let answered: u64 = flood
        .split("answered=")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("answered=N");
    // 20 queries/s with a burst of 40 over ~3 s: about 100 of 3000.
    assert!(
        (1..=200).contains(&answered),
        "rate limit per source: {flood}"
    );
    let report = liar.wait_line(Duration::from_secs(5), |l| l.starts_with("BAD_ANSWERS"));
    let bad: u64 = report
        .as_deref()
        .and_then(|l| l.strip_prefix("BAD_ANSWERS n="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("liar report: {}", liar.dump(10)));
    assert!(bad >= 1, "pixtorrent asked the liar in its lookups");
}
