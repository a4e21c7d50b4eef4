//! The `pixtorrent` binary's torrent loading and `--info`: from a file, from an http URL, and the
//! one-line errors for a missing file, a bad torrent, an HTTP error and an oversized download.

mod common;

use std::process::Output;

fn run(args: &[&str]) -> Output {
    common::px().args(args).output().expect("run pixtorrent")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn info_from_an_http_url_matches_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, hash) = common::write_torrent(
        dir.path(),
        "web",
        &[vec!["http://t.example/announce".into()]],
    );
    let server = common::JunkServer::with_file(std::fs::read(&path).unwrap());
    let from_url = run(&["--info", "-t", &format!("{}/file", server.base)]);
    let from_file = run(&["--info", path.to_str().unwrap()]);
    assert!(from_url.status.success(), "{}", stderr(&from_url));
    assert_eq!(from_url.stdout, from_file.stdout);
    let text = String::from_utf8_lossy(&from_url.stdout);
    assert!(text.contains(&format!("Info hash:   {hash}")), "{text}");
    assert!(text.contains("tier 1: http://t.example/announce"), "{text}");
}

#[test]
fn info_json_is_one_object() {
    let dir = tempfile::tempdir().unwrap();
    let (path, hash) = common::write_torrent(dir.path(), "json", &[]);
    let out = run(&["--info", "--json", "-t", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["info_hash"], hash.to_hex());
    assert_eq!(v["total_size"], 1000);
    assert_eq!(v["piece_count"], 1);
    assert_eq!(v["files"][0]["path"], "json");
    assert!(v["magnet"]
        .as_str()
        .unwrap()
        .starts_with(&format!("magnet:?xt=urn:btih:{hash}")));
}

#[test]
fn errors_are_one_line_and_non_zero() {
    let server = common::JunkServer::start();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.torrent");
    std::fs::write(&junk, b"d4:infod4:name1:a12:piece lengthi0eee").unwrap();
    let cases = [
        (
            "/nonexistent/x.torrent".to_string(),
            "cannot open /nonexistent/x.torrent: No such file",
        ),
        (junk.display().to_string(), "`info.piece length` is 0"),
        (format!("{}/404", server.base), "HTTP 404 Not Found"),
        (
            format!("{}/huge", server.base),
            "larger than the limit of 10485760 bytes",
        ),
        (
            format!("{}/html", server.base),
            "not valid bencode at byte 0",
        ),
    ];
    for (source, want) in cases {
        let out = run(&["--info", "-t", &source]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{source}: {err}");
        assert_eq!(err.lines().count(), 1, "{source}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(want),
            "{source}: {err}"
        );
    }
    let out = run(&["--info"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no torrent given"));
    let out = run(&["--json", "-t", "x"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--json needs --info: a usage error"
    );
}
