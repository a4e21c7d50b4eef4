//! Terminal escapes in outside text never reach stdout or stderr raw, at any verbosity: tracker URLs
//! (HTTP and UDP), tracker failure reasons and warnings, web seed URLs, file and torrent names, in
//! `--info`, `--announce-only`, a download that fails, and `create`.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use pixtorrent::bencode::Value;

const EVIL_TRACKER: &str = "http://127.0.0.1:9/\x1b[31mEVIL\x1b[0m";
const EVIL_UDP: &str = "udp://127.0.0.1:9/\x1b[33mUDP\u{9b}2J";
const EVIL_WEB: &str = "http://127.0.0.1:9/\x1b[32mWS\x1b[0m/";

/// The first character a terminal could act on (C0/C1 control other than line break and tab, or a
/// bidi override), with its byte offset.
fn first_escape(bytes: &[u8]) -> Option<(usize, char)> {
    String::from_utf8_lossy(bytes)
        .char_indices()
        .find(|&(_, c)| pixtorrent::text::is_unprintable(c) && c != '\n' && c != '\t')
}

fn assert_clean(what: &str, out: &Output) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if let Some((at, c)) = first_escape(bytes) {
            let text = String::from_utf8_lossy(bytes);
            panic!(
                "{what}: {stream} has {c:?} at byte {at}:\n{}",
                text.escape_debug()
            );
        }
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = common::px();
    cmd.current_dir(dir)
        .args(args)
        .env("PIXTORRENT_PROGRESS_SECS", "1")
        .env_remove("PIXTORRENT_LOG");
    output_within(cmd, Duration::from_secs(60))
}

/// Runs `cmd` to its end, killed (by pid) if it takes longer than `limit`.
fn output_within(mut cmd: Command, limit: Duration) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pixtorrent");
    let mut pipes = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = pipes.0.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = pipes.1.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pixtorrent {cmd:?} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A torrent of `dir/payload` whose trackers and web seeds are full of escapes.
fn evil_torrent(dir: &Path) -> std::path::PathBuf {
    let payload = dir.join("payload");
    std::fs::create_dir_all(&payload).unwrap();
    std::fs::write(payload.join("a.bin"), vec![7u8; 40_000]).unwrap();
    let torrent = dir.join("evil.torrent");
    let out = run(
        dir,
        &[
            "create",
            payload.to_str().unwrap(),
            "-o",
            torrent.to_str().unwrap(),
            "--tracker",
            EVIL_TRACKER,
            "--tracker",
            EVIL_UDP,
            "--web-seed",
            EVIL_WEB,
            "--comment",
            "see \x1b]8;;http://evil/\x07here",
        ],
    );
    assert_clean("create", &out);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    torrent
}

#[test]
fn escapes_in_trackers_web_seeds_and_comments_are_never_printed_raw() {
    let dir = tempfile::tempdir().unwrap();
    let torrent = evil_torrent(dir.path());
    let t = torrent.to_str().unwrap();
    let out_dir = dir.path().join("out");
    let o = out_dir.to_str().unwrap();
    let info = run(dir.path(), &["--info", t]);
    assert_clean("--info", &info);
    assert!(String::from_utf8_lossy(&info.stdout).contains("?[31mEVIL?[0m"));
    assert_clean("--info --json", &run(dir.path(), &["--info", "--json", t]));
    for verbosity in [None, Some("-v"), Some("-vv")] {
        let mut args = vec!["--announce-only", "--tracker-timeout", "2", t];
        args.extend(verbosity);
        let a = run(dir.path(), &args);
        assert_clean(&format!("--announce-only {verbosity:?}"), &a);
        assert!(!a.status.success());
        // The download: the trackers refuse at once, the web seed URL is not valid: it fails with
        // an error line that quotes the last tracker error.
        let mut args = vec!["-t", t, "-o", o, "--port", "0", "--bind", "127.0.0.1"];
        args.extend(verbosity);
        let d = run(dir.path(), &args);
        assert_clean(&format!("download {verbosity:?}"), &d);
        let err = String::from_utf8_lossy(&d.stderr);
        assert_eq!(d.status.code(), Some(1), "{err}");
        assert!(err.contains("error: nothing to download from"), "{err}");
        assert!(err.contains("?["), "the escapes are shown, defused: {err}");
    }
}

#[test]
fn escapes_in_a_tracker_reply_are_never_printed_raw() {
    let server = common::JunkServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/evil", server.base);
    let (torrent, _) = common::write_torrent(dir.path(), "replies", &[vec![url]]);
    let t = torrent.to_str().unwrap();
    let o = dir.path().join("out");
    for verbosity in [None, Some("-vv")] {
        let mut args = vec!["--announce-only", "--tracker-timeout", "2", t];
        args.extend(verbosity);
        let a = run(dir.path(), &args);
        assert_clean("--announce-only, evil reply", &a);
        assert!(String::from_utf8_lossy(&a.stdout).contains("?[31mEVIL?[0m?2J!"));
        let mut args = vec!["-t", t, "-o", o.to_str().unwrap(), "--port", "0"];
        args.extend(verbosity);
        let d = run(dir.path(), &args);
        assert_clean("download, evil reply", &d);
        assert_eq!(d.status.code(), Some(1));
    }
}

#[test]
fn escapes_in_names_are_refused_without_being_printed() {
    let dir = tempfile::tempdir().unwrap();
    for (key, name) in [
        ("name", "to\x1b[2Jrrent"),
        ("file", "fi\u{9b}31mle"),
        ("file", "gpj.\u{202e}exe"),
    ] {
        let file = Value::dict([
            ("length", Value::Int(10)),
            (
                "path",
                Value::List(vec![Value::str(if key == "file" { name } else { "f" })]),
            ),
        ]);
        let info = Value::dict([
            ("name", Value::str(if key == "name" { name } else { "t" })),
            ("piece length", Value::Int(16384)),
            ("pieces", Value::Bytes(vec![0xab; 20])),
            ("files", Value::List(vec![file])),
        ]);
        let path = dir.path().join("named.torrent");
        std::fs::write(&path, Value::dict([("info", info)]).encode()).unwrap();
        for args in [
            vec!["--info", path.to_str().unwrap()],
            vec!["-vv", "-t", path.to_str().unwrap(), "-o", "out"],
        ] {
            let out = run(dir.path(), &args);
            assert_clean(&format!("{key} {name:?} {args:?}"), &out);
            assert_eq!(out.status.code(), Some(1));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.starts_with("error: "), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
    // A file whose name carries an escape, given to `create`: refused or left out, never echoed.
    let payload = dir.path().join("payload");
    std::fs::create_dir_all(&payload).unwrap();
    std::fs::write(payload.join("ok.bin"), b"data").unwrap();
    std::fs::write(payload.join("x\x1b[31mred.bin"), b"data").unwrap();
    let out = run(
        dir.path(),
        &["create", payload.to_str().unwrap(), "-o", "c.torrent"],
    );
    assert_clean("create of a name with an escape", &out);
}
