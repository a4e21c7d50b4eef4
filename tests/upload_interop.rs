//! Uploading: pixtorrent as the only seeder, real clients leeching from it through a real
//! opentracker on 127.0.0.1. (Issue 4 is in progress: more leechers and hostile peers come next.)

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Duration;

use common::payload::{assert_same_tree, Payload, STANDARD};
use common::seeders::{free_port_on, LtOptions, LtPeer, Proc};
use common::{wait_for_seeders, Opentracker};

const LEECH_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn libtorrent_leecher_downloads_from_a_pixtorrent_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let mut payload = Payload::generate(dir.path(), STANDARD, "http://127.0.0.1:9/announce");
    let Some(tracker) = Opentracker::start(&[payload.info_hash]) else {
        return;
    };
    payload.set_announce(&tracker.http);
    // pixtorrent seeds the generated data where it lies (DIR/<name>/...), for at most two minutes.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pixtorrent"));
    cmd.arg("-t")
        .arg(&payload.torrent)
        .arg("-o")
        .arg(&payload.save_dir)
        .args(["--seed", "--seed-time", "120"])
        .args([
            "--port",
            &free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST)).to_string(),
        ])
        .args(["--bind", "127.0.0.1"]);
    let mut seeder = Proc::spawn("pixtorrent seeder", cmd);
    wait_for_seeders(&tracker.http, payload.info_hash, 1, Duration::from_secs(30));

    let out = dir.path().join("leech");
    std::fs::create_dir_all(&out).unwrap();
    let opts = LtOptions {
        seed: false,
        exit_when_done: true,
        ..LtOptions::default()
    };
    let Some(mut leecher) = LtPeer::start(&payload.torrent, &out, &opts) else {
        return;
    };
    let done = leecher
        .proc
        .wait_line(LEECH_TIMEOUT, |l| l.starts_with("DONE"));
    assert!(
        done.is_some(),
        "libtorrent did not finish\n{}\n{}",
        leecher.proc.dump(20),
        seeder.dump(20)
    );
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    let (_, down) = leecher.transferred();
    assert!(down >= payload.total, "libtorrent downloaded {down} bytes");

    // Ctrl-C ends seeding with status 0 and a summary counting what was uploaded.
    let pid = seeder.pid().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let status = seeder
        .wait_exit(Duration::from_secs(5))
        .expect("seeder exits");
    assert!(
        status.success(),
        "seeder exit {status}\n{}",
        seeder.dump(20)
    );
    let uploaded = seeder
        .stdout()
        .iter()
        .find_map(|l| {
            l.trim()
                .strip_prefix("uploaded: ")
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
        })
        .unwrap_or(0);
    assert!(
        uploaded >= payload.total,
        "seeder reports {uploaded} bytes uploaded"
    );
}
