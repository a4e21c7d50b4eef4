//! `pixtorrent --announce-only` end to end: the built binary against a real opentracker, a port where
//! nothing listens, and a junk HTTP server; one line per tracker and the exit code.

mod common;

use std::process::Output;
use std::time::Duration;

use pixtorrent::tracker::{AnnounceRequest, Event, TrackerClient, TrackerConfig};
use pixtorrent::types::PeerId;

fn run(args: &[&str]) -> Output {
    common::px().args(args).output().expect("run pixtorrent")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test]
async fn opentracker_http_and_udp_answer_and_no_ghost_is_left() {
    let hash = common::hash_for("probe");
    let Some(ot) = common::Opentracker::start(&[hash]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (torrent, _) = common::write_torrent(
        dir.path(),
        "probe",
        &[vec![ot.http.clone()], vec![ot.udp.clone()]],
    );
    let out = run(&[
        "--announce-only",
        "--port",
        "7777",
        "-t",
        torrent.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("tier 1  {}", ot.http)) && lines[0].contains(" ok "),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!("tier 2  {}", ot.udp)) && lines[1].contains(" ok "),
        "{stdout}"
    );
    for line in &lines[..2] {
        for field in ["seeders ", "leechers ", "peers ", "interval ", " ms"] {
            assert!(line.contains(field), "{line} lacks {field}");
        }
    }
    assert_eq!(lines[2], "2 of 2 trackers answered");

    // The probe said `stopped`: a later peer must not be handed 127.0.0.1:7777.
    let client = TrackerClient::new(TrackerConfig::default()).unwrap();
    let req = AnnounceRequest {
        info_hash: hash,
        peer_id: PeerId(*b"-XX0000-checkcheck00"),
        port: 7778,
        uploaded: 0,
        downloaded: 0,
        left: 1,
        event: Event::Started,
        numwant: Some(50),
        key: 1,
        tracker_id: None,
    };
    let r = client.announce(&ot.http, &req).await.unwrap();
    assert!(
        !r.peers.contains(&"127.0.0.1:7777".parse().unwrap()),
        "ghost peer left: {:?}",
        r.peers
    );
}

#[test]
fn nothing_listening_fails_with_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let http = format!("http://127.0.0.1:{}/announce", common::free_tcp_port());
    let udp = format!("udp://127.0.0.1:{}/announce", common::free_udp_port());
    let (torrent, _) =
        common::write_torrent(dir.path(), "dead", &[vec![http.clone(), udp.clone()]]);
    let out = run(&[
        "--announce-only",
        "--tracker-timeout",
        "5",
        "-t",
        torrent.to_str().unwrap(),
    ]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let find = |url: &str| {
        stdout
            .lines()
            .find(|l| l.contains(url))
            .unwrap_or_else(|| panic!("no line for {url}:\n{stdout}"))
    };
    assert!(
        find(&http).contains("failed") && find(&http).contains("connection"),
        "{stdout}"
    );
    assert!(
        find(&udp).contains("failed") && find(&udp).contains("connection refused"),
        "{stdout}"
    );
    assert!(stdout.ends_with("0 of 2 trackers answered\n"), "{stdout}");
}

#[test]
fn junk_trackers_each_get_a_clear_error() {
    let junk = common::JunkServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("/html", "HTML page"),
        ("/garbage", "not bencode"),
        ("/404", "HTTP 404 Not Found"),
        ("/truncated", "broken response body"),
        ("/huge", "larger than the limit"),
        ("/silent", "no answer after 2s"),
        ("/failure", "tracker refused: unregistered"),
    ];
    let tier: Vec<String> = cases
        .iter()
        .map(|(p, _)| format!("{}{p}", junk.base))
        .collect();
    let mut tiers = vec![tier];
    tiers.push(vec!["wss://tracker.example/announce".into()]);
    let (torrent, _) = common::write_torrent(dir.path(), "junk", &tiers);
    let out = run(&[
        "--announce-only",
        "--tracker-timeout",
        "2",
        "-t",
        torrent.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for (path, want) in cases {
        let url = format!("{}{path}", junk.base);
        let line = stdout
            .lines()
            .find(|l| l.contains(&format!("{url} ")))
            .unwrap_or_else(|| panic!("no line for {url}:\n{stdout}"));
        assert!(
            line.contains("failed") && line.contains(want),
            "{path}: {line}"
        );
    }
    assert!(
        stdout.contains("unsupported tracker scheme `wss`"),
        "{stdout}"
    );
    assert!(stdout.ends_with("0 of 8 trackers answered\n"), "{stdout}");
}

#[test]
fn one_good_tracker_is_enough() {
    let hash = common::hash_for("mixed");
    let Some(ot) = common::Opentracker::start(&[hash]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}/announce", common::free_tcp_port());
    let (torrent, _) =
        common::write_torrent(dir.path(), "mixed", &[vec![dead], vec![ot.udp.clone()]]);
    let out = run(&["--announce-only", torrent.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.ends_with("1 of 2 trackers answered\n"), "{stdout}");
}

#[test]
fn torrent_without_trackers() {
    let dir = tempfile::tempdir().unwrap();
    let (torrent, _) = common::write_torrent(dir.path(), "lonely", &[]);
    let out = run(&["--announce-only", "-t", torrent.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr,
        "error: the torrent lists no trackers (it relies on DHT or web seeds)\n"
    );
}

#[test]
fn silent_udp_tracker_times_out_within_the_deadline() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("udp://{}/announce", silent.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (torrent, _) = common::write_torrent(dir.path(), "silent", &[vec![url]]);
    let start = std::time::Instant::now();
    let out = run(&[
        "--announce-only",
        "--tracker-timeout",
        "1",
        "-t",
        torrent.to_str().unwrap(),
    ]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("no answer after 1s"), "{stdout}");
    // Not a timing assertion on our speed: a guard that the deadline is obeyed at all (UDP's own first
    // retransmission would come at 15 s).
    assert!(
        start.elapsed() < Duration::from_secs(12),
        "took {:?}",
        start.elapsed()
    );
    drop(silent);
}
