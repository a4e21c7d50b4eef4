//! `pixtorrent create` checked against python3-libtorrent: the same files in the same order and the
//! same piece size give the same v1 info-hash (so the same piece hashes), single- and multi-file; and
//! a torrent just made is seeded at once by pixtorrent to a libtorrent leecher.

mod common;

use std::path::Path;
use std::process::Command;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::payload::assert_same_tree;
use common::seeders::{free_port_on, python_with_libtorrent, LtOptions, LtPeer, Proc};

fn pixtorrent_create(path: &Path, out: &Path) -> (String, u32) {
    let o = common::px()
        .arg("create")
        .arg(path)
        .arg("-o")
        .arg(out)
        .args(["--tracker", "http://127.0.0.1:9/announce"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let info = common::px()
        .args(["--info", "--json"])
        .arg(out)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    (
        v["info_hash"].as_str().unwrap().to_string(),
        v["piece_length"].as_u64().unwrap() as u32,
    )
}

fn libtorrent_hash(python: &Path, root: &Path, piece: u32, files: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/lt_info_hash.py");
    let o = Command::new(python)
        .arg(script)
        .arg(root)
        .arg(piece.to_string())
        .args(files)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn create_matches_libtorrent_multi_and_single_file() {
    let Some(python) = python_with_libtorrent() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("IA_Item");
    std::fs::create_dir_all(root.join("Content")).unwrap();
    std::fs::write(root.join("Content/movie.mp4"), bytes(3_000_001, 1)).unwrap();
    std::fs::write(root.join("IA_Item_meta.xml"), bytes(1431, 2)).unwrap();
    std::fs::write(root.join("__ia_thumb.jpg"), bytes(16_385, 3)).unwrap();
    std::fs::write(root.join("empty.txt"), b"").unwrap();
    let (ours, piece) = pixtorrent_create(&root, &dir.path().join("multi.torrent"));
    // Byte order of the paths, as pixtorrent lists them.
    let order = [
        "Content/movie.mp4",
        "IA_Item_meta.xml",
        "__ia_thumb.jpg",
        "empty.txt",
    ];
    assert_eq!(ours, libtorrent_hash(&python, &root, piece, &order));

    let single = root.join("Content/movie.mp4");
    let (ours, piece) = pixtorrent_create(&single, &dir.path().join("single.torrent"));
    assert_eq!(ours, libtorrent_hash(&python, &single, piece, &[]));
}

#[test]
fn a_created_torrent_is_seedable_at_once() {
    if python_with_libtorrent().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share/MyItem");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/big.bin"), bytes(5_000_003, 7)).unwrap();
    std::fs::write(root.join("notes.txt"), bytes(777, 8)).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    let torrent = dir.path().join("MyItem.torrent");
    pixtorrent_create(&root, &torrent);

    // pixtorrent seeds the files where they lie; its tracker is dead, so the leecher dials it.
    let port = free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut cmd = common::px();
    cmd.arg("-t")
        .arg(&torrent)
        .arg("-o")
        .arg(dir.path().join("share"))
        .args(["--seed", "--seed-time", "120", "--bind", "127.0.0.1"])
        .args(["--port", &port.to_string()]);
    let mut seeder = Proc::spawn("pixtorrent seeder", cmd);
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    common::wait_for_tcp(addr, Duration::from_secs(30));

    let out = dir.path().join("leech");
    std::fs::create_dir_all(&out).unwrap();
    let opts = LtOptions {
        seed: false,
        exit_when_done: true,
        wait_tracker: false,
        connect: vec![addr],
        ..LtOptions::default()
    };
    let Some(mut leecher) = LtPeer::start(&torrent, &out, &opts) else {
        return;
    };
    let done = leecher
        .proc
        .wait_line(Duration::from_secs(120), |l| l.starts_with("DONE"));
    assert!(
        done.is_some(),
        "libtorrent did not finish\n{}\n{}",
        leecher.proc.dump(20),
        seeder.dump(20)
    );
    assert_same_tree(&root, &out.join("MyItem"));
    seeder.stop();
}
