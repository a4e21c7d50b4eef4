//! Peer exchange (BEP 11) with python3-libtorrent, both ways: pixtorrent finds a seeder only through
//! a libtorrent peer's `ut_pex`, and a libtorrent leecher finds a seeder only through pixtorrent's.
//! A private torrent (BEP 27) neither offers, sends nor takes it, even from a peer that sends it anyway.

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::payload::{assert_same_tree, Payload, SMALL, STANDARD};
use common::seeders::{script, LtOptions, LtPeer, Proc};
use common::{expect_success, payload_and_tracker, pixtorrent, wait_for_seeders, wait_for_tcp};

#[test]
fn pixtorrent_learns_the_seeder_from_a_libtorrent_peer_s_pex() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, tracker)) = payload_and_tracker(dir.path(), STANDARD) else {
        return;
    };
    let Some(mut seeder) = LtPeer::seed(&payload.torrent, &payload.save_dir) else {
        return;
    };
    wait_for_seeders(&tracker.http, payload.info_hash, 1, Duration::from_secs(30));
    // A leecher that knows the seeder through the tracker, held to a trickle both ways: it stays
    // a leecher connected to the seeder, and can give pixtorrent little but the metadata and PEX.
    let relay_dir = dir.path().join("relay");
    std::fs::create_dir_all(&relay_dir).unwrap();
    let opts = LtOptions {
        seed: false,
        upload_limit: 4_000,
        download_limit: 50_000,
        ..LtOptions::default()
    };
    let Some(mut relay) = LtPeer::start(&payload.torrent, &relay_dir, &opts) else {
        return;
    };
    // No tracker in the link, and only the relay by hand: the seeder can come from PEX alone.
    let magnet = format!("magnet:?xt=urn:btih:{}", payload.info_hash);
    let out = dir.path().join("px");
    let relay_addr = relay.addr.to_string();
    let (mut px, _) = pixtorrent(
        "pixtorrent",
        Path::new(&magnet),
        &out,
        Ipv4Addr::LOCALHOST,
        &["--peer", &relay_addr, "-v"],
    );
    expect_success(&mut px, Duration::from_secs(180));
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    let summary = px.stdout().join("\n");
    let by_source = summary
        .lines()
        .find(|l| l.trim_start().starts_with("peers by source:"))
        .unwrap_or_else(|| panic!("{summary}"));
    let pex_bytes: u64 = by_source
        .split("pex ")
        .nth(1)
        .and_then(|rest| rest.split('(').nth(1))
        .and_then(|b| b.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pex peer in {by_source:?}"));
    assert!(
        pex_bytes > payload.total / 2,
        "the seeder found by PEX supplied most of it: {by_source}"
    );
    relay.stop();
    seeder.stop();
}

#[test]
fn a_libtorrent_leecher_learns_the_seeder_from_pixtorrent_s_pex() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, tracker)) = payload_and_tracker(dir.path(), STANDARD) else {
        return;
    };
    // A slow seeder, so that pixtorrent is still downloading from it when the leecher arrives.
    let opts = LtOptions {
        upload_limit: 1_500_000,
        ..LtOptions::default()
    };
    let Some(mut seeder) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    wait_for_seeders(&tracker.http, payload.info_hash, 1, Duration::from_secs(30));
    let out = dir.path().join("px");
    let (mut px, px_addr) = pixtorrent(
        "pixtorrent",
        &payload.torrent,
        &out,
        Ipv4Addr::LOCALHOST,
        &["--seed", "--seed-time", "120"],
    );
    // The leecher has a torrent with no reachable tracker and is given only pixtorrent.
    let lone = payload.torrent_with(
        &dir.path().join("lone.torrent"),
        "http://127.0.0.1:9/announce",
    );
    let lt_dir = dir.path().join("lt");
    std::fs::create_dir_all(&lt_dir).unwrap();
    let opts = LtOptions {
        seed: false,
        exit_when_done: true,
        wait_tracker: false,
        connect: vec![px_addr],
        ..LtOptions::default()
    };
    let Some(mut leecher) = LtPeer::start(&lone, &lt_dir, &opts) else {
        return;
    };
    leecher.wait_done(Duration::from_secs(180));
    assert_same_tree(&payload.root(), &lt_dir.join(payload.name()));
    // Blocks from anyone but pixtorrent: the seeder, dialled by the leecher (its listening address)
    // or dialling it (an ephemeral port), since PEX told each about the other.
    let lines = leecher.proc.stdout();
    let from_seeder = lines
        .iter()
        .filter_map(|l| l.strip_prefix("PEER "))
        .filter(|l| !l.starts_with(&format!("{px_addr} ")))
        .filter_map(|l| l.split("blocks=").nth(1))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum::<u64>();
    eprintln!(
        "leecher peers: {:?}",
        lines
            .iter()
            .filter(|l| l.starts_with("PEER "))
            .collect::<Vec<_>>()
    );
    assert!(
        from_seeder > 0,
        "the leecher got nothing from the seeder it could only learn of by PEX:\n{}",
        leecher.proc.dump(20)
    );
    let _ = px.stop();
    seeder.stop();
}

/// What a scripted PEX peer saw of a pixtorrent downloading `payload` (as a private torrent or not)
/// from a libtorrent seeder: whether pixtorrent offered `ut_pex`, sent any, and dialled the address
/// the scripted peer told it of.
struct PexSeen {
    offered: bool,
    sent: bool,
    dialled: bool,
}

fn pex_with_a_scripted_peer(dir: &Path, payload: &Payload, private: bool) -> Option<PexSeen> {
    let torrent = dir.join(if private {
        "private.torrent"
    } else {
        "public.torrent"
    });
    let info_hash = if private {
        payload.private_torrent(&torrent)
    } else {
        payload.torrent_with(&torrent, "http://127.0.0.1:9/announce");
        payload.info_hash
    };
    let opts = LtOptions {
        wait_tracker: false,
        ..LtOptions::default()
    };
    let mut seeder = LtPeer::start(&torrent, &payload.save_dir, &opts)?;
    // The address the scripted peer names in its PEX: does pixtorrent dial it?
    let recorder = TcpListener::bind("127.0.0.1:0").unwrap();
    recorder.set_nonblocking(true).unwrap();
    let recorder_addr = recorder.local_addr().unwrap();
    let out = dir.join(if private { "px-private" } else { "px-public" });
    let seeder_addr = seeder.addr.to_string();
    let (mut px, px_addr) = pixtorrent(
        "pixtorrent",
        &torrent,
        &out,
        Ipv4Addr::LOCALHOST,
        &["--peer", &seeder_addr, "--seed", "--seed-time", "60", "-v"],
    );
    wait_for_tcp(px_addr, Duration::from_secs(20));
    // Give pixtorrent its seeder connection first, so it has a peer to tell of.
    std::thread::sleep(Duration::from_secs(1));
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(script("pex_peer.py"))
        .args(["--connect", &px_addr.to_string()])
        .args(["--info-hash", &info_hash.to_string()])
        .args(["--pex-to", &recorder_addr.to_string()])
        .args(["--secs", "10"]);
    let mut peer = Proc::spawn("pex peer", cmd);
    let mut dialled = false;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(12) && !dialled {
        dialled = recorder.accept().is_ok();
        std::thread::sleep(Duration::from_millis(100));
    }
    let end = peer.wait_line(Duration::from_secs(15), |l| l == "END");
    let lines = peer.stdout();
    peer.stop();
    px.stop();
    seeder.stop();
    assert!(
        end.is_some(),
        "the scripted peer ran: {lines:?}\n{}",
        px.dump(20)
    );
    assert!(
        lines.iter().any(|l| l == "PEX_SENT"),
        "the scripted peer sent its PEX: {lines:?}\n{}",
        px.dump(20)
    );
    Some(PexSeen {
        offered: lines.iter().any(|l| l == "THEIR_M ut_pex=1"),
        sent: lines.iter().any(|l| l.starts_with("PEX_RECEIVED")),
        dialled,
    })
}

#[test]
fn a_private_torrent_sends_and_takes_no_pex() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    // The same setup with a public torrent first: PEX is offered, sent and acted on, so the
    // private run's silence is the private flag's doing.
    let Some(public) = pex_with_a_scripted_peer(dir.path(), &payload, false) else {
        return;
    };
    assert!(
        public.offered && public.sent && public.dialled,
        "public torrent: offered {}, sent {}, dialled {}",
        public.offered,
        public.sent,
        public.dialled
    );
    let Some(private) = pex_with_a_scripted_peer(dir.path(), &payload, true) else {
        return;
    };
    assert!(!private.offered, "ut_pex offered for a private torrent");
    assert!(!private.sent, "a PEX message sent for a private torrent");
    assert!(
        !private.dialled,
        "an address heard by PEX was dialled for a private torrent"
    );
}
