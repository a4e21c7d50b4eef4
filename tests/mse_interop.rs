//! MSE/PE against python3-libtorrent (issue 15): pixtorrent's handshake state machine opens an
//! encrypted connection to a libtorrent seeder that forces RC4 and answers one; pixtorrent downloads
//! a `.torrent` and a magnet link (metadata included) from a seeder forcing encryption; a pixtorrent
//! seeder requiring encryption serves only encrypted leechers. And against transmission-daemon 3.00
//! requiring encryption (`"encryption": 2`), in a network namespace of the test's own since it refuses
//! loopback peers: pixtorrent downloads from it, and it downloads from a pixtorrent seeder requiring
//! encryption.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::netns::NetNs;
use common::payload::{Payload, SMALL, STANDARD};
use common::seeders::{LtOptions, LtPeer, Proc, Transmission, TransmissionOptions};
use common::{tool, wait_for_seeders, Opentracker};
use pixtorrent::mse::crypto::{CRYPTO_PLAINTEXT, CRYPTO_RC4};
use pixtorrent::mse::handshake::{Done, Handshake, Progress};
use pixtorrent::types::PeerId;
use pixtorrent::wire::Handshake as BtHandshake;

/// Runs our initiator over `stream` until it finishes (bounded by 10 s).
fn mse_connect(stream: &mut TcpStream, hs: &mut Handshake) -> Done {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        assert!(start.elapsed() < Duration::from_secs(10), "MSE timed out");
        let out = hs.output();
        if !out.is_empty() {
            stream.write_all(&out).unwrap();
        }
        match stream.read(&mut buf) {
            Ok(0) => panic!("libtorrent closed the connection during MSE"),
            Ok(n) => match hs.feed(&buf[..n]).expect("a valid MSE exchange") {
                Progress::More => {}
                Progress::Done(done) => {
                    let out = hs.output();
                    stream.write_all(&out).unwrap();
                    return *done;
                }
            },
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn an_rc4_connection_to_a_libtorrent_seeder_that_forces_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    let opts = LtOptions {
        wait_tracker: false,
        encryption: "forced",
        ..LtOptions::default()
    };
    let Some(mut seeder) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    // A plaintext handshake is refused by a peer that forces encryption...
    let mut plain = TcpStream::connect(seeder.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let ours = BtHandshake::ours(payload.info_hash, PeerId(*b"-PX0001-msetest00000")).encode();
    plain.write_all(&ours).unwrap();
    let mut reply = [0u8; 68];
    assert!(
        plain.read_exact(&mut reply).is_err(),
        "libtorrent forcing encryption answered plaintext"
    );
    // ...and an MSE one with our handshake as the initial payload is answered over RC4.
    let mut stream = TcpStream::connect(seeder.addr).unwrap();
    let mut hs = Handshake::initiator(
        &mut rand::rng(),
        payload.info_hash.0,
        CRYPTO_RC4 | CRYPTO_PLAINTEXT,
        ours.to_vec(),
    );
    let mut done = mse_connect(&mut stream, &mut hs);
    assert_eq!(done.method, CRYPTO_RC4, "libtorrent forced RC4");
    let streams = done.streams.as_mut().expect("RC4 streams");
    let mut theirs = done.rest.clone();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while theirs.len() < 68 && start.elapsed() < Duration::from_secs(10) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let mut chunk = buf[..n].to_vec();
                streams.receive.apply(&mut chunk);
                theirs.extend(chunk);
            }
            Err(_) => {}
        }
    }
    assert!(
        theirs.len() >= 68,
        "libtorrent's handshake: {} bytes",
        theirs.len()
    );
    let bt = BtHandshake::decode(theirs[..68].try_into().unwrap()).expect("a BitTorrent handshake");
    assert_eq!(bt.info_hash, payload.info_hash);
    seeder.stop();
}

#[test]
fn a_libtorrent_leecher_that_forces_encryption_is_answered_by_our_responder() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let leech_dir = dir.path().join("lt");
    std::fs::create_dir_all(&leech_dir).unwrap();
    let opts = LtOptions {
        seed: false,
        wait_tracker: false,
        encryption: "forced",
        connect: vec![listener.local_addr().unwrap()],
        ..LtOptions::default()
    };
    let Some(mut leecher) = LtPeer::start(&payload.torrent, &leech_dir, &opts) else {
        return;
    };
    let start = Instant::now();
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if start.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("libtorrent never connected: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    // Another torrent first among ours: the right one is found by req2 xor req3.
    let mut hs = Handshake::responder(
        &mut rand::rng(),
        vec![[0x42; 20], payload.info_hash.0],
        CRYPTO_RC4 | CRYPTO_PLAINTEXT,
    );
    let done = mse_connect(&mut stream, &mut hs);
    assert_eq!(done.method, CRYPTO_RC4);
    assert_eq!(done.info_hash, payload.info_hash.0);
    let bt = BtHandshake::decode(done.ia[..68].try_into().expect("a 68-byte IA"))
        .expect("libtorrent's BitTorrent handshake as the initial payload");
    assert_eq!(bt.info_hash, payload.info_hash);
    leecher.stop();
}

#[test]
fn pixtorrent_downloads_from_a_libtorrent_seeder_that_forces_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), STANDARD, "http://127.0.0.1:9/announce");
    let opts = LtOptions {
        wait_tracker: false,
        encryption: "forced",
        ..LtOptions::default()
    };
    let Some(mut seeder) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    // Default options (--encryption prefer): MSE first, which this seeder requires.
    let out = dir.path().join("px");
    let peer = seeder.addr.to_string();
    let (mut px, _) = common::pixtorrent(
        "pixtorrent",
        &payload.torrent,
        &out,
        std::net::Ipv4Addr::LOCALHOST,
        &["--peer", &peer, "-v"],
    );
    common::expect_success(&mut px, Duration::from_secs(120));
    common::payload::assert_same_tree(&payload.root(), &out.join(payload.name()));
    assert!(
        px.stderr()
            .iter()
            .any(|l| l.contains("transport=\"tcp+rc4\"")),
        "no RC4 connection logged:\n{}",
        px.dump(20)
    );
    // A magnet link with --encryption require: the metadata is fetched over MSE too.
    let magnet = format!("magnet:?xt=urn:btih:{}&x.pe={peer}", payload.info_hash);
    let out = dir.path().join("magnet");
    let (mut px, _) = common::pixtorrent(
        "pixtorrent magnet",
        std::path::Path::new(&magnet),
        &out,
        std::net::Ipv4Addr::LOCALHOST,
        &["--encryption", "require"],
    );
    common::expect_success(&mut px, Duration::from_secs(120));
    common::payload::assert_same_tree(&payload.root(), &out.join(payload.name()));
    seeder.stop();
}

#[test]
fn a_seeder_requiring_encryption_serves_encrypted_leechers_only() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), STANDARD, "http://127.0.0.1:9/announce");
    let (mut px, px_addr) = common::pixtorrent(
        "pixtorrent seeder",
        &payload.torrent,
        &payload.save_dir,
        std::net::Ipv4Addr::LOCALHOST,
        &[
            "--seed",
            "--seed-time",
            "120",
            "--encryption",
            "require",
            "-v",
        ],
    );
    common::wait_for_tcp(px_addr, Duration::from_secs(30));
    // A leecher with encryption disabled gets nothing...
    let plain_dir = dir.path().join("plain");
    std::fs::create_dir_all(&plain_dir).unwrap();
    let plain_opts = LtOptions {
        seed: false,
        wait_tracker: false,
        encryption: "disabled",
        connect: vec![px_addr],
        ..LtOptions::default()
    };
    let Some(mut plain) = LtPeer::start(&payload.torrent, &plain_dir, &plain_opts) else {
        return;
    };
    // ...while one forcing encryption gets everything.
    let enc_dir = dir.path().join("enc");
    std::fs::create_dir_all(&enc_dir).unwrap();
    let enc_opts = LtOptions {
        seed: false,
        wait_tracker: false,
        encryption: "forced",
        connect: vec![px_addr],
        ..LtOptions::default()
    };
    let Some(mut enc) = LtPeer::start(&payload.torrent, &enc_dir, &enc_opts) else {
        return;
    };
    enc.wait_done(Duration::from_secs(120));
    common::payload::assert_same_tree(&payload.root(), &enc_dir.join(payload.name()));
    let (_, plain_down) = plain.transferred();
    assert_eq!(
        plain_down, 0,
        "the plaintext leecher got data from a seeder requiring encryption"
    );
    plain.stop();
    enc.stop();
    px.stop();
}

/// Transmission's `encryption` setting that refuses plaintext peers.
const TRANSMISSION_REQUIRE: TransmissionOptions = TransmissionOptions {
    upload_limit_kb: 0,
    encryption: 2,
};

/// Whether Transmission, the daemon and transmission-remote, and opentracker are installed.
fn transmission_tools() -> bool {
    ["transmission-daemon", "transmission-remote", "opentracker"]
        .iter()
        .all(|t| tool(t).is_some())
}

/// Checks that `daemon` runs with encryption required, as its RPC reports it.
fn assert_encryption_required(daemon: &Transmission) {
    let info = daemon.remote(&["--session-info"]);
    assert!(
        info.contains("Encryption: required"),
        "Transmission's session:\n{info}"
    );
}

/// The `connected` lines of `px`'s `-v` log whose `peer=` field starts with `peer` (an address, or
/// an IP and a colon).
fn connected_lines(px: &Proc, peer: &str) -> Vec<String> {
    let lines = px.stderr();
    let field = format!("peer={peer}");
    let named = |l: &&String| l.contains(" connected") && l.contains(&field);
    lines.iter().filter(named).cloned().collect()
}

#[test]
fn pixtorrent_downloads_from_a_transmission_seeder_that_requires_encryption() {
    if !transmission_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(ns) = NetNs::create() else { return };
    let payload = Payload::generate(dir.path(), STANDARD, "http://127.0.0.1:9/announce");
    let Some(seeder) = Transmission::seed_with(
        &ns,
        &payload.torrent,
        payload.info_hash,
        &payload.save_dir,
        &TRANSMISSION_REQUIRE,
    ) else {
        return;
    };
    assert_encryption_required(&seeder);
    // Default options (--encryption prefer): MSE first, which this seeder requires. Transmission
    // refuses loopback peers: pixtorrent dials from the host side of the veth.
    let out = dir.path().join("px");
    let peer = seeder.addr.to_string();
    let (mut px, _) = common::pixtorrent(
        "pixtorrent",
        &payload.torrent,
        &out,
        ns.host_ip,
        &["--peer", &peer, "-v"],
    );
    let took = common::expect_success(&mut px, Duration::from_secs(120));
    eprintln!("downloaded from Transmission in {took:.1?}");
    common::payload::assert_same_tree(&payload.root(), &out.join(payload.name()));
    let connected = connected_lines(&px, &peer);
    let rc4 = |l: &String| l.contains("transport=\"tcp+rc4\"");
    assert!(
        !connected.is_empty() && connected.iter().all(rc4),
        "connections to Transmission, all to be RC4: {connected:#?}\n{}",
        px.dump(20)
    );
    // The seeder, torrent running, leaves a plaintext handshake unanswered.
    let mut plain = TcpStream::connect_timeout(&seeder.addr, Duration::from_secs(5)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let ours = BtHandshake::ours(payload.info_hash, PeerId(*b"-PX0001-msetest00000")).encode();
    plain.write_all(&ours).unwrap();
    let mut reply = [0u8; 68];
    assert!(
        plain.read_exact(&mut reply).is_err(),
        "Transmission requiring encryption answered a plaintext handshake"
    );
    drop(seeder);
}

#[test]
fn a_transmission_leecher_that_requires_encryption_downloads_from_a_pixtorrent_seeder() {
    if !transmission_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(ns) = NetNs::create() else { return };
    let mut payload = Payload::generate(dir.path(), STANDARD, "http://127.0.0.1:9/announce");
    let Some(tracker) = Opentracker::start_on(&[payload.info_hash], &[ns.host_ip]) else {
        return;
    };
    // Transmission refuses loopback peers: pixtorrent binds the host side of the veth and announces
    // there, so the tracker hands Transmission an address the namespace reaches.
    let url = tracker.http_on(ns.host_ip);
    payload.set_announce(&url);
    let (mut px, _) = common::pixtorrent(
        "pixtorrent seeder",
        &payload.torrent,
        &payload.save_dir,
        ns.host_ip,
        &[
            "--seed",
            "--seed-time",
            "120",
            "--encryption",
            "require",
            "-v",
        ],
    );
    wait_for_seeders(&url, payload.info_hash, 1, Duration::from_secs(30));
    let out = dir.path().join("transmission");
    std::fs::create_dir_all(&out).unwrap();
    let start = Instant::now();
    let Some(leecher) = Transmission::leech_with(
        &ns,
        &payload.torrent,
        payload.info_hash,
        &out,
        &TRANSMISSION_REQUIRE,
    ) else {
        return;
    };
    assert_encryption_required(&leecher);
    // Transmission unchokes and requests on its own schedule.
    if let Err(info) = leecher.wait_done(Duration::from_secs(120)) {
        panic!(
            "Transmission did not finish in {:?}:\n{info}\n{}\n{}",
            start.elapsed(),
            px.dump(30),
            leecher.proc.dump(20),
        );
    }
    eprintln!("Transmission finished in {:.1?}", start.elapsed());
    // Stopping the torrent closes its files (its write cache is flushed).
    leecher.remote(&["-t", &payload.info_hash.to_hex(), "--stop"]);
    std::thread::sleep(Duration::from_millis(500));
    // Transmission 3.00 does not create zero-length files: make them, so that the comparison covers
    // the rest (their absence is Transmission's, not pixtorrent's).
    for (rel, len) in &payload.files {
        let path = out.join(payload.name()).join(rel);
        if *len == 0 && !path.exists() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::File::create(&path).unwrap();
        }
    }
    common::payload::assert_same_tree(&payload.root(), &out.join(payload.name()));
    let connected = connected_lines(&px, &format!("{}:", ns.ns_ip));
    let rc4 = |l: &String| l.contains("transport=\"tcp+rc4\"");
    assert!(
        !connected.is_empty() && connected.iter().all(rc4),
        "connections from Transmission, all to be RC4: {connected:#?}\n{}",
        px.dump(20)
    );
    drop(leecher);
    px.stop();
    drop(tracker);
}
