//! File selection (issue 16) against a python3-libtorrent seeder: `--only`/`--exclude` and
//! `--select-file` (with the indexes `--info` prints) download the selected files byte-identically,
//! leave files that share no piece with them uncreated, create the boundary files sparse, fetch
//! fewer than 2 pieces beyond the wanted ones, and exit 0 once the selection is complete; a later
//! run without a selection completes the rest. Refusals come before any network traffic.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::payload::{Payload, STANDARD};
use common::seeders::{LtOptions, LtPeer};

fn seeder(payload: &Payload) -> Option<LtPeer> {
    let opts = LtOptions {
        wait_tracker: false,
        ..LtOptions::default()
    };
    LtPeer::start(&payload.torrent, &payload.save_dir, &opts)
}

/// Pieces of each file, worked out here from the payload's file list (not by pixtorrent).
fn piece_ranges(payload: &Payload) -> Vec<std::ops::Range<u64>> {
    let pl = u64::from(payload.piece_length);
    let mut offset = 0;
    payload
        .files
        .iter()
        .map(|(_, len)| {
            let r = if *len == 0 {
                0..0
            } else {
                offset / pl..(offset + len).div_ceil(pl)
            };
            offset += len;
            r
        })
        .collect()
}

/// What a selection of `selected` (indexes into `payload.files`) must leave on disk under `out`:
/// the selected files identical to the seed's, the others absent unless they share a piece with a
/// selected file, and then sparse (fewer bytes allocated than two pieces). Returns the wanted
/// pieces' byte count.
fn check_selection(payload: &Payload, out: &Path, selected: &[usize]) -> u64 {
    let ranges = piece_ranges(payload);
    let mut wanted = std::collections::BTreeSet::new();
    for &i in selected {
        wanted.extend(ranges[i].clone());
    }
    let root = out.join(payload.name());
    for (i, (rel, len)) in payload.files.iter().enumerate() {
        let path = root.join(rel);
        if selected.contains(&i) {
            let got = std::fs::read(&path).unwrap_or_else(|e| panic!("{rel:?}: {e}"));
            let want = std::fs::read(payload.root().join(rel)).unwrap();
            assert!(got == want, "{rel:?} differs from the seed's");
            continue;
        }
        let boundary = ranges[i].clone().any(|p| wanted.contains(&p));
        match std::fs::metadata(&path) {
            Err(_) => assert!(
                !boundary,
                "{rel:?} shares a wanted piece but was not created"
            ),
            Ok(m) => {
                assert!(boundary, "{rel:?} shares no wanted piece but was created");
                assert_eq!(m.len(), *len, "{rel:?} has the file's size");
                let allocated = m.blocks() * 512;
                assert!(
                    allocated <= 2 * u64::from(payload.piece_length) + 65_536,
                    "{rel:?} is sparse: {allocated} bytes allocated of {len}"
                );
            }
        }
    }
    let pl = u64::from(payload.piece_length);
    let last = payload.piece_count() - 1;
    let last_len = payload.total - last * pl;
    wanted
        .iter()
        .map(|&p| if p == last { last_len } else { pl })
        .sum()
}

/// The `fetched: N bytes` figure of pixtorrent's summary.
fn fetched(stdout: &[String]) -> u64 {
    stdout
        .iter()
        .find_map(|l| l.trim().strip_prefix("fetched: "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("a fetched line in the summary")
}

fn index_of(payload: &Payload, name: &str) -> usize {
    payload
        .files
        .iter()
        .position(|(rel, _)| rel.ends_with(name))
        .unwrap_or_else(|| panic!("{name} in the payload"))
}

#[test]
fn only_and_exclude_then_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), STANDARD, "http://127.0.0.1:9/announce");
    let Some(mut seed) = seeder(&payload) else {
        return;
    };
    let peer = seed.addr.to_string();
    let out = dir.path().join("px");
    // The .ogv and the 512kb .mp4, not the big .mp4 beside them nor anything at the top.
    let (mut px, _) = common::pixtorrent(
        "pixtorrent --only",
        &payload.torrent,
        &out,
        std::net::Ipv4Addr::LOCALHOST,
        &[
            "--peer",
            &peer,
            "--only",
            "Content/*",
            "--exclude",
            "IA_Item.mp4",
            "--exclude",
            "*.gif",
            "--exclude",
            "*.txt",
        ],
    );
    common::expect_success(&mut px, Duration::from_secs(120));
    let selected = [
        index_of(&payload, "IA_Item.ogv"),
        index_of(&payload, "IA_Item_512kb.mp4"),
    ];
    let wanted = check_selection(&payload, &out, &selected);
    let got = fetched(&px.stdout());
    let pl = u64::from(payload.piece_length);
    assert!(
        got < wanted + 2 * pl,
        "fetched {got} bytes for {wanted} bytes of wanted pieces\n{}",
        px.dump(20)
    );
    assert!(
        px.stdout()
            .iter()
            .any(|l| l.contains("selected files: 2 of 10")),
        "{}",
        px.dump(20)
    );
    seed.stop();
    let (up, _) = seed.transferred();
    assert!(
        up < wanted + 2 * pl,
        "the seeder sent {up} bytes for {wanted} bytes of wanted pieces"
    );
    eprintln!("selection: {wanted} bytes wanted, {got} fetched, {up} sent by the seeder");
    // The same directory without a selection: the rest arrives, boundary pieces are not fetched
    // again, and the whole tree equals the seed's.
    let Some(seed) = seeder(&payload) else {
        return;
    };
    let (mut px, _) = common::pixtorrent(
        "pixtorrent all",
        &payload.torrent,
        &out,
        std::net::Ipv4Addr::LOCALHOST,
        &["--peer", &seed.addr.to_string()],
    );
    common::expect_success(&mut px, Duration::from_secs(120));
    let rest = fetched(&px.stdout());
    assert!(
        rest <= payload.total - wanted + 2 * pl,
        "fetched {rest} bytes for the rest ({} bytes)",
        payload.total - wanted
    );
    common::payload::assert_same_tree(&payload.root(), &out.join(payload.name()));
}

/// `--info`'s index for the file ending in `name`.
fn info_index(info: &str, name: &str) -> String {
    info.lines()
        .find(|l| l.trim_end().ends_with(name))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{name} in --info:\n{info}"))
        .to_string()
}

#[test]
fn select_file_takes_the_indexes_info_prints() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), STANDARD, "http://127.0.0.1:9/announce");
    let info = common::px()
        .args(["--info", "-t"])
        .arg(&payload.torrent)
        .output()
        .unwrap();
    assert!(info.status.success());
    let info = String::from_utf8(info.stdout).unwrap();
    // The first file, the zero-length one and the one after it, as a list and a range.
    let first = info_index(&info, "IA_Item_meta.xml");
    let txt = info_index(&info, "IA_Item.txt");
    let ogv = info_index(&info, "IA_Item.ogv");
    assert_eq!(first, "1");
    let list = format!("{first},{txt}-{ogv}");
    let Some(seed) = seeder(&payload) else {
        return;
    };
    let out = dir.path().join("px");
    let (mut px, _) = common::pixtorrent(
        "pixtorrent --select-file",
        &payload.torrent,
        &out,
        std::net::Ipv4Addr::LOCALHOST,
        &["--peer", &seed.addr.to_string(), "--select-file", &list],
    );
    common::expect_success(&mut px, Duration::from_secs(120));
    let selected = [
        index_of(&payload, "IA_Item_meta.xml"),
        index_of(&payload, "IA_Item.txt"),
        index_of(&payload, "IA_Item.ogv"),
    ];
    let wanted = check_selection(&payload, &out, &selected);
    let txt = out.join(payload.name()).join("Content/IA_Item.txt");
    assert_eq!(std::fs::metadata(&txt).map(|m| m.len()).ok(), Some(0));
    let got = fetched(&px.stdout());
    assert!(got < wanted + 2 * u64::from(payload.piece_length));
}

fn refused(torrent: &Path, out: &Path, args: &[&str]) -> (i32, String) {
    let o = common::px()
        .args(["-t"])
        .arg(torrent)
        .arg("-o")
        .arg(out)
        .args(["--port", "0"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    (o.status.code().unwrap_or(-1), err)
}

#[test]
fn a_selection_that_does_not_fit_is_refused_before_any_traffic() {
    let dir = tempfile::tempdir().unwrap();
    // A dead tracker: were the refusal late, the run would wait on it.
    let payload = Payload::generate(dir.path(), 6_000_000, "http://127.0.0.1:9/announce");
    let out: PathBuf = dir.path().join("px");
    for (args, says) in [
        (&["--select-file", "11"][..], "the torrent has 10 files"),
        (&["--select-file", "2-12"][..], "--select-file 11"),
        (&["--only", "*.mkv"][..], "select no file"),
        (&["--exclude", "**"][..], "select no file"),
    ] {
        let started = std::time::Instant::now();
        let (code, err) = refused(&payload.torrent, &out, args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!out.join(payload.name()).exists(), "nothing created");
    }
    for (args, says) in [
        (&["--select-file", "0"][..], "whole numbers from 1"),
        (&["--select-file", "3-1"][..], "backwards"),
        (&["--only", "[ab"][..], "not closed"),
    ] {
        let (code, err) = refused(&payload.torrent, &out, args);
        assert_eq!(code, 2, "a usage error: {args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
