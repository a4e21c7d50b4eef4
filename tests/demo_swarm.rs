//! The README's 3-node demo stays true: `example-torrents/make-demo-payload.py` makes the same bytes
//! the committed `example-torrents/pixtorrent-demo.torrent` describes, and `scripts/demo-swarm.sh`
//! (pixtorrent-tracker, a pixtorrent seeder, two pixtorrent leechers) ends with identical copies, the
//! leechers having traded with each other.

mod common;

use std::path::Path;
use std::process::Command;

const DEMO_HASH: &str = "5a8dc0daf047d3d72b3e25a9464126eeabbb3461";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn info_hash(torrent: &Path) -> String {
    let o = common::px()
        .args(["--info", "--json"])
        .arg(torrent)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["info_hash"].as_str().unwrap().to_string()
}

#[test]
fn demo_payload_matches_the_committed_torrent() {
    let Some(python) = common::tool("python3") else {
        return;
    };
    assert_eq!(
        info_hash(&root().join("example-torrents/pixtorrent-demo.torrent")),
        DEMO_HASH
    );
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new(python)
        .arg(root().join("example-torrents/make-demo-payload.py"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let made = dir.path().join("made.torrent");
    let o = common::px()
        .arg("create")
        .arg(dir.path().join("pixtorrent-demo"))
        .arg("-o")
        .arg(&made)
        .args(["--piece-size", "262144"])
        .args(["--tracker", "http://127.0.0.1:16969/announce"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(info_hash(&made), DEMO_HASH);
}

#[test]
fn demo_swarm_script_finishes_with_identical_copies() {
    if common::tool("python3").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new("timeout")
        .arg("240")
        .arg(root().join("scripts/demo-swarm.sh"))
        .arg(dir.path())
        .env("PIXTORRENT_BIN", env!("CARGO_BIN_EXE_pixtorrent"))
        .env("PIXTORRENT_NO_DHT", "1")
        .env("PIXTORRENT_FORBID_PUBLIC_DHT", "1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "demo failed\n{out}\n{err}");
    assert!(
        out.contains("demo: both leechers hold files identical"),
        "{out}"
    );
    assert!(
        out.contains("[seeder]     pieces already on disk: 161/161"),
        "{out}"
    );
    for l in ["[leecher1]", "[leecher2]"] {
        assert!(
            out.contains(&format!("{l} Completed pixtorrent-demo")),
            "{l} did not finish\n{out}"
        );
    }
    // The leechers traded: at least one of them uploaded something.
    let leecher_uploads: u64 = out
        .lines()
        .filter(|l| l.starts_with("[leecher") && l.contains("  uploaded: "))
        .filter_map(|l| {
            l.split("uploaded: ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(leecher_uploads > 0, "no leecher uploaded anything\n{out}");
    // The tracker saw both downloads complete while the seeder was still in the swarm.
    assert!(out.contains(r#""completed":2"#), "{out}");
}
