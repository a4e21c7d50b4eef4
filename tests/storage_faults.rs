//! A file cut short by another program while `pixtorrent` writes it (issue 12, item 5): the download
//! ends with one clear `error:` line naming the file and exit status 1 (not death by SIGBUS), and the
//! same command run again resumes from the pieces kept and completes. The data comes from the tests'
//! own web seed server, paced so the truncation lands early in the download.

mod common;

use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::payload::{assert_same_tree, Payload, SMALL};
use common::webserver::WebServer;
use common::{expect_success, pixtorrent};

/// Bytes per second from the mirror: [`SMALL`] takes about 4 s, so there is time to truncate at 25%.
const RATE: u64 = 2_000_000;
/// Bounds a hung download (or a wait for progress that never comes).
const TIMEOUT: Duration = Duration::from_secs(60);
/// The payload file truncated: 3 MB in the middle of the 8 MB (pieces 6 to 12 of 16). With
/// `--strategy sequential` each web seed connection fetches its own run of pieces in order: by 25%
/// the first run has verified pieces before this file (kept), and pieces of it remain to be written,
/// so a write into it faults after the truncation.
const VICTIM: &str = "Content/IA_Item.ogv";

#[test]
fn a_file_truncated_mid_download_is_one_clear_error_and_a_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    // The torrent's tracker is a dead port: the web seed is the only source.
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    let server = WebServer::paced(&payload.save_dir, RATE);
    let seed = server.url("good", "");
    let out = dir.path().join("out");
    let victim = out.join(payload.name()).join(VICTIM);
    let args = ["--web-seed", seed.as_str(), "--strategy", "sequential"];

    let (mut px, _) = pixtorrent(
        "pixtorrent",
        &payload.torrent,
        &out,
        Ipv4Addr::LOCALHOST,
        &args,
    );
    let start = Instant::now();
    while server.bytes("good") < payload.total / 4 {
        assert!(
            start.elapsed() < TIMEOUT && px.try_status().is_none(),
            "pixtorrent ended or stalled before 25%\n{}",
            px.dump(30)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_len(0)
        .unwrap();
    let cut_at = server.bytes("good");
    eprintln!(
        "truncated {} after {cut_at} bytes were served",
        victim.display()
    );

    let status = px.wait_exit(TIMEOUT);
    let status = status.unwrap_or_else(|| panic!("pixtorrent did not stop\n{}", px.dump(30)));
    assert_eq!(status.signal(), None, "killed by a signal\n{}", px.dump(30));
    assert_eq!(status.code(), Some(1), "{}", px.dump(30));
    let errors: Vec<String> = px
        .stderr()
        .into_iter()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", px.dump(30));
    let expected = format!(
        "error: {}: the file was truncated by another program (now 0 bytes",
        victim.display()
    );
    assert!(errors[0].starts_with(&expected), "{}", errors[0]);
    assert!(
        errors[0].ends_with("run the same command again to resume"),
        "{}",
        errors[0]
    );
    eprintln!("{}", px.dump(10));
    let served = server.bytes("good");
    assert!(
        served < payload.total,
        "the download should stop at the fault, not finish: {served} of {} bytes served",
        payload.total
    );

    // The same command again: the pieces of the other files are found by the re-check.
    let (mut again, _) = pixtorrent("rerun", &payload.torrent, &out, Ipv4Addr::LOCALHOST, &args);
    expect_success(&mut again, TIMEOUT);
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    let kept = again
        .stdout()
        .iter()
        .find_map(|l| {
            l.trim()
                .strip_prefix("pieces already on disk: ")
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no `pieces already on disk:` line\n{}", again.dump(30)));
    let (kept, _) = kept.split_once('/').unwrap();
    assert!(
        kept.parse::<u32>().unwrap() >= 1,
        "the re-run found nothing kept\n{}",
        again.dump(30)
    );
    eprintln!(
        "first run: error after {served} of {} bytes served; the re-run found {kept} pieces on disk",
        payload.total
    );
}
