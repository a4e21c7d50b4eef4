//! The `pixtorrent` binary downloads from web seeds (BEP 19), HTTP mirrors served by the tests' own
//! [`WebServer`]: alone (with a dead tracker, or none), next to a libtorrent seeder, past mirrors that
//! answer wrongly (dropped), redirect (followed) or stall (worked around), and for single-file
//! torrents by file and by base URL; v2-only and hybrid torrents; `--no-web-seeds` and `--web-seed`. The last test checks the
//! server itself.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pixtorrent::bencode::{decode, Limits, Value};
use sha1::{Digest, Sha1};

use common::payload::{assert_same_tree, Payload, SMALL};
use common::seeders::{LtOptions, LtPeer};
use common::webserver::{addr_of, WebServer};
use common::{free_tcp_port, payload_and_tracker, pixtorrent, wait_for_seeders};

/// A download here takes seconds; this bounds a hung one.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(90);
/// How long pixtorrent waits for a silent mirror's next bytes (`session::webseed::READ_TIMEOUT`). A
/// download must not wait for it while another mirror can serve the stalled blocks.
const STALL_TIMEOUT: Duration = Duration::from_secs(20);
/// The payload shared by a libtorrent seeder and two web seeds: big enough for all three to matter.
const MIXED_SIZE: u64 = 24_000_017;
/// Bytes per second from each source when three share a download (about 3 s in all).
const MIXED_RATE: u64 = 3_000_000;
/// Bytes per second from the one good mirror among bad ones: slow enough (about 6 s for
/// [`MIXED_SIZE`]) that each bad mirror, backed off 1 s then 2 s, gets its three strikes before the
/// download ends. The payload is larger than the good mirror's reservations (a few 4 MiB runs), so
/// the bad ones always find something to ask for.
const SLOW_RATE: u64 = 4_000_000;
/// Bytes per second from the good mirror next to a stalling one (about 2.7 s for [`SMALL`]).
const STALL_GOOD_RATE: u64 = 3_000_000;
/// The modes of [`WebServer`] that must end up dropped.
const DROPPED_MODES: [&str; 4] = ["corrupt", "notfound", "norange", "short"];

/// A `web seed URL: N bytes[, dropped: REASON]` line of the summary.
#[derive(Debug)]
struct Seed {
    url: String,
    bytes: u64,
    dropped: Option<String>,
}

/// What pixtorrent's closing summary says about its sources.
#[derive(Debug, Default)]
struct Summary {
    seeds: Vec<Seed>,
    /// `from web seeds: N bytes, from peers: M bytes`
    from_web: u64,
    from_peers: u64,
    /// `peer ADDR (CLIENT): N bytes`
    peers: Vec<(String, u64)>,
}

impl Summary {
    fn parse(stdout: &[String]) -> Summary {
        let mut s = Summary::default();
        let mut totals = false;
        for line in stdout.iter().map(|l| l.trim()) {
            if let Some(rest) = line.strip_prefix("web seed ") {
                // A URL holds no ": " (no spaces at all); a reason may.
                let (url, rest) = rest.split_once(": ").expect("web seed URL: N bytes");
                let dropped = rest
                    .split_once(", dropped: ")
                    .map(|(_, why)| why.to_string());
                s.seeds.push(Seed {
                    url: url.to_string(),
                    bytes: number(rest),
                    dropped,
                });
            } else if let Some(rest) = line.strip_prefix("from web seeds: ") {
                let (web, peers) = rest
                    .split_once(", from peers: ")
                    .expect("from web seeds: N bytes, from peers: M bytes");
                (s.from_web, s.from_peers, totals) = (number(web), number(peers), true);
            } else if let Some(rest) = line.strip_prefix("peer ") {
                let (addr, rest) = rest.split_once(' ').expect("peer ADDR (CLIENT): N bytes");
                let (_, bytes) = rest
                    .rsplit_once("): ")
                    .expect("peer ADDR (CLIENT): N bytes");
                s.peers.push((addr.to_string(), number(bytes)));
            }
        }
        assert!(
            totals,
            "no `from web seeds:` line in pixtorrent's summary:\n{}",
            stdout.join("\n")
        );
        s
    }

    /// The line for `url` (as given to pixtorrent); panics if there is none.
    fn seed(&self, url: &str) -> &Seed {
        let found = self.seeds.iter().find(|s| s.url == url);
        found.unwrap_or_else(|| panic!("no `web seed {url}:` line in {self:#?}"))
    }

    /// Asserts that `url` alone supplied all `total` bytes and was kept.
    fn assert_all_from(&self, url: &str, total: u64) {
        let seed = self.seed(url);
        assert_eq!(seed.bytes, total, "bytes from {url}: {self:#?}");
        assert_eq!(seed.dropped, None, "{url} was dropped: {self:#?}");
        assert_eq!((self.from_web, self.from_peers), (total, 0), "{self:#?}");
        assert!(self.peers.is_empty(), "peers with no tracker: {self:#?}");
    }
}

/// The decimal number `text` starts with.
fn number(text: &str) -> u64 {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number at the start of {text:?}"))
}

/// Runs `pixtorrent -v -t TORRENT -o OUT EXTRA…` on 127.0.0.1; panics unless it exits 0 within
/// [`DOWNLOAD_TIMEOUT`]; returns the summary.
fn download(torrent: &Path, out: &Path, extra: &[&str]) -> Summary {
    let args: Vec<&str> = std::iter::once("-v").chain(extra.iter().copied()).collect();
    let (mut px, _) = pixtorrent("pixtorrent", torrent, out, Ipv4Addr::LOCALHOST, &args);
    common::expect_success(&mut px, DOWNLOAD_TIMEOUT);
    let summary = Summary::parse(&px.stdout());
    eprintln!("{}", px.dump(200));
    summary
}

/// Writes a torrent of `info` at `path` announcing to `announce` (`None`: no tracker at all), with
/// `url_list` (a string or a list) when given.
fn write_torrent(
    path: &Path,
    info: &Value,
    announce: Option<&str>,
    url_list: Option<Value>,
) -> PathBuf {
    let mut torrent = Value::dict([("info", info.clone())]);
    if let Some(url) = announce {
        torrent.insert("announce", Value::str(url));
    }
    if let Some(list) = url_list {
        torrent.insert("url-list", list);
    }
    std::fs::write(path, torrent.encode()).unwrap();
    path.to_path_buf()
}

/// The info dictionary of the payload's torrent (checked to re-encode to the same info-hash).
fn info_of(payload: &Payload) -> Value {
    let bytes = std::fs::read(&payload.torrent).unwrap();
    let doc = decode(&bytes, Limits::TORRENT).unwrap();
    let info = doc.root().get(b"info").expect("info").to_value();
    let hash: [u8; 20] = Sha1::digest(info.encode()).into();
    assert_eq!(hash, payload.info_hash.0, "the re-encoded info dictionary");
    info
}

/// `len` deterministic bytes in `dir/name`; returns them and a single-file info dictionary for them
/// (256 KiB pieces, the last one short).
fn single_file(dir: &Path, name: &str, len: usize) -> (Vec<u8>, Value) {
    const PIECE: usize = 256 * 1024;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), &data).unwrap();
    let pieces = data.chunks(PIECE).flat_map(|c| Sha1::digest(c).to_vec());
    let info = Value::dict([
        ("length", Value::Int(len as i64)),
        ("name", Value::str(name)),
        ("piece length", Value::Int(PIECE as i64)),
        ("pieces", Value::Bytes(pieces.collect())),
    ]);
    (data, info)
}

#[test]
fn web_seed_alone_with_an_unreachable_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    let server = WebServer::start(&payload.save_dir);
    let dead = format!("http://127.0.0.1:{}/announce", free_tcp_port());
    // A base URL without its trailing `/`: the client adds it. `url-list` as a list.
    let url = format!("{}/good", server.base);
    let list = Value::List(vec![Value::str(&url)]);
    let path = dir.path().join("dead-tracker.torrent");
    let torrent = write_torrent(&path, &info_of(&payload), Some(&dead), Some(list));
    let out = dir.path().join("out");
    let summary = download(&torrent, &out, &[]);
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    summary.assert_all_from(&url, payload.total);
    assert!(server.bytes("good") >= payload.total);
}

#[test]
fn web_seed_alone_without_any_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    let server = WebServer::start(&payload.save_dir);
    // `url-list` as a single string.
    let url = server.url("good", "");
    let path = dir.path().join("no-tracker.torrent");
    let torrent = write_torrent(&path, &info_of(&payload), None, Some(Value::str(&url)));
    let out = dir.path().join("out");
    let summary = download(&torrent, &out, &[]);
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    summary.assert_all_from(&url, payload.total);
}

#[test]
fn two_web_seeds_and_a_libtorrent_seeder_all_contribute() {
    let dir = tempfile::tempdir().unwrap();
    let Some((payload, tracker)) = payload_and_tracker(dir.path(), MIXED_SIZE) else {
        return;
    };
    let opts = LtOptions {
        upload_limit: MIXED_RATE,
        ..LtOptions::default()
    };
    let Some(seeder) = LtPeer::start(&payload.torrent, &payload.save_dir, &opts) else {
        return;
    };
    wait_for_seeders(&tracker.http, payload.info_hash, 1, Duration::from_secs(30));
    let a = WebServer::paced(&payload.save_dir, MIXED_RATE);
    let b = WebServer::paced(&payload.save_dir, MIXED_RATE);
    let (url_a, url_b) = (a.url("good", ""), b.url("good", ""));
    // One mirror from the torrent's `url-list`, the other from the command line.
    let path = dir.path().join("mixed.torrent");
    let info = info_of(&payload);
    let torrent = write_torrent(&path, &info, Some(&tracker.http), Some(Value::str(&url_a)));
    let out = dir.path().join("out");
    let summary = download(&torrent, &out, &["--web-seed", &url_b]);
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    for url in [&url_a, &url_b] {
        let seed = summary.seed(url);
        assert!(
            seed.bytes > 0 && seed.dropped.is_none(),
            "{url}: {summary:#?}"
        );
    }
    let from_seeder: u64 = (summary.peers.iter())
        .filter(|p| p.0.starts_with("127.0.0.1:"))
        .map(|p| p.1)
        .sum();
    assert!(
        from_seeder > 0 && summary.from_peers > 0,
        "nothing from the libtorrent seeder at {}: {summary:#?}",
        seeder.addr
    );
    let web: u64 = summary.seeds.iter().map(|s| s.bytes).sum();
    assert_eq!(web, summary.from_web, "{summary:#?}");
    assert_eq!(
        summary.from_web + summary.from_peers,
        payload.total,
        "useful bytes from all sources: {summary:#?}"
    );
}

#[test]
fn bad_mirrors_are_dropped_and_a_redirected_one_serves() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), MIXED_SIZE, "http://127.0.0.1:9/announce");
    let bad = WebServer::start(&payload.save_dir);
    let good = WebServer::paced(&payload.save_dir, SLOW_RATE);
    let redirect = good.url("redirect2", "");
    let mut urls: Vec<String> = DROPPED_MODES.iter().map(|m| bad.url(m, "")).collect();
    urls.push(redirect.clone());
    let list = Value::List(urls.iter().map(|u| Value::str(u)).collect());
    let path = dir.path().join("mirrors.torrent");
    let torrent = write_torrent(&path, &info_of(&payload), None, Some(list));
    let out = dir.path().join("out");
    let summary = download(&torrent, &out, &[]);
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    for (mode, url) in DROPPED_MODES.iter().zip(&urls) {
        let seed = summary.seed(url);
        assert!(
            seed.dropped.is_some(),
            "the {mode} mirror was not dropped ({} requests): {summary:#?}",
            bad.requests(mode)
        );
    }
    let seed = summary.seed(&redirect);
    assert!(
        seed.bytes > 0 && seed.dropped.is_none(),
        "the redirecting mirror: {summary:#?}"
    );
    assert!(
        good.requests("redirect1") > 0 && good.bytes("good") >= seed.bytes,
        "the redirects were not followed to /good/"
    );
    assert_eq!(
        (summary.from_web, summary.from_peers),
        (payload.total, 0),
        "useful bytes (a hash-failed piece is not useful): {summary:#?}"
    );
}

#[test]
fn a_stalled_mirror_does_not_hold_up_the_download() {
    stalled_mirror_among(&[]);
}

#[test]
fn a_stalled_mirror_does_not_hold_up_pieces_another_mirror_corrupted() {
    stalled_mirror_among(&["corrupt"]);
}

/// Downloads from a `stall` mirror, a paced good one and the mirrors of `modes`: the good one must
/// take over the stalled blocks well before the stall times out.
fn stalled_mirror_among(modes: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    let bad = WebServer::start(&payload.save_dir);
    // The stalled mirror has reserved its first run long before the end.
    let good = WebServer::paced(&payload.save_dir, STALL_GOOD_RATE);
    let (stall, url) = (bad.url("stall", ""), good.url("good", ""));
    let others = modes.iter().map(|m| bad.url(m, ""));
    let urls: Vec<String> = others.chain([stall.clone(), url.clone()]).collect();
    let list = Value::List(urls.iter().map(|u| Value::str(u)).collect());
    let path = dir.path().join("stall.torrent");
    let torrent = write_torrent(&path, &info_of(&payload), None, Some(list));
    let out = dir.path().join("out");
    let start = Instant::now();
    let summary = download(&torrent, &out, &[]);
    let took = start.elapsed();
    assert_same_tree(&payload.root(), &out.join(payload.name()));
    assert!(
        bad.requests("stall") > 0,
        "the stalling mirror was not asked"
    );
    assert_eq!(summary.seed(&stall).bytes, 0, "{summary:#?}");
    summary.seed(&url);
    assert!(
        took < STALL_TIMEOUT,
        "the download took {took:?}: it waited for the stalled mirror instead of asking the other"
    );
}

#[test]
fn single_file_torrents_by_file_url_and_by_base_url() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let name = "single file (1).bin";
    let (bytes, info) = single_file(&data, name, 3_000_017);
    let server = WebServer::start(&data);
    // The file's own URL (our spelling; the client encodes `(` itself when it appends the name).
    let file_url = server.url("good", "single%20file%20(1).bin");
    let base_url = server.url("good", "");
    let cases = [
        ("file-url", Value::str(&file_url), &file_url),
        (
            "base-url",
            Value::List(vec![Value::str(&base_url)]),
            &base_url,
        ),
    ];
    for (label, url_list, url) in cases {
        let path = dir.path().join(format!("{label}.torrent"));
        let torrent = write_torrent(&path, &info, None, Some(url_list));
        let out = dir.path().join(label);
        let summary = download(&torrent, &out, &[]);
        assert_same_tree(&data, &out);
        summary.assert_all_from(url, bytes.len() as u64);
    }
}

/// A v2-only and a hybrid torrent of a multi-file payload (`pixtorrent create`, 64 KiB pieces, so
/// files start on piece boundaries and the hybrid lists pad files), from one web seed alone: the
/// mirror is asked per file (BEP 19), pad files never, and the tree is byte-identical.
#[test]
fn v2_and_hybrid_torrents_from_a_web_seed_alone() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::generate(dir.path(), SMALL, "http://127.0.0.1:9/announce");
    let server = WebServer::start(&payload.save_dir);
    let url = server.url("good", "");
    for format in ["--v2", "--hybrid"] {
        let torrent = dir.path().join(format!("{}.torrent", &format[2..]));
        let mut create = common::px();
        create
            .arg("create")
            .arg(payload.root())
            .arg("-o")
            .arg(&torrent);
        create.args([format, "--piece-size", "65536"]);
        let mut made = common::seeders::Proc::spawn("pixtorrent create", create);
        common::expect_success(&mut made, DOWNLOAD_TIMEOUT);
        let out = dir.path().join(&format[2..]);
        let summary = download(&torrent, &out, &["--web-seed", &url]);
        assert_same_tree(&payload.root(), &out.join(payload.name()));
        // The summary credits the mirror with the zeros of the pad files too (they are made up
        // locally, never fetched), so it is at least the payload; the server saw the payload.
        let seed = summary.seed(&url);
        assert_eq!(seed.dropped, None, "{summary:#?}");
        assert!(seed.bytes >= payload.total, "{summary:#?}");
        assert_eq!((summary.from_web, summary.from_peers), (seed.bytes, 0));
        assert!(
            server.bytes("good") >= payload.total,
            "{format}: served too little"
        );
    }
}

#[test]
fn no_web_seeds_ignores_the_url_list_but_not_explicit_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (bytes, info) = single_file(&data, "one.bin", 1_000_003);
    let server = WebServer::start(&data);
    let ignored = server.url("notfound", "");
    let path = dir.path().join("one.torrent");
    let torrent = write_torrent(&path, &info, None, Some(Value::str(&ignored)));
    let explicit = server.url("good", "one.bin");
    let out = dir.path().join("out");
    let summary = download(&torrent, &out, &["--no-web-seeds", "--web-seed", &explicit]);
    assert_same_tree(&data, &out);
    summary.assert_all_from(&explicit, bytes.len() as u64);
    assert_eq!(summary.seeds.len(), 1, "{summary:#?}");
    assert_eq!(server.requests("notfound"), 0, "the url-list was used");
}

/// One HTTP/1.1 exchange on `conn`: the head (lower-cased) and `Content-Length` bytes of body.
fn exchange(conn: &mut BufReader<TcpStream>, path: &str, headers: &str) -> (String, Vec<u8>) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n");
    conn.get_mut().write_all(request.as_bytes()).unwrap();
    let mut head = String::new();
    for _ in 0..50 {
        let mut line = String::new();
        conn.read_line(&mut line).unwrap();
        head.push_str(&line.to_ascii_lowercase());
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, number);
    let mut body = Vec::new();
    let read = conn.take(length).read_to_end(&mut body);
    assert!(read.is_ok(), "reading the body of {path}: {read:?}");
    (head, body)
}

#[test]
fn test_server_answers_ranges_and_misbehaves_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = single_file(dir.path(), "f b.bin", 200_000);
    let server = WebServer::start(dir.path());
    let stream = TcpStream::connect(addr_of(&server)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut conn = BufReader::new(stream);
    let mut get = |path: &str, headers: &str| exchange(&mut conn, path, headers);

    // All on one keep-alive connection.
    let (head, body) = get("/good/f%20b.bin", "Range: bytes=10-19\r\n");
    assert!(head.starts_with("http/1.1 206 "), "{head}");
    assert!(
        head.contains("content-range: bytes 10-19/200000\r\n"),
        "{head}"
    );
    assert_eq!(body, &data[10..20]);
    let (head, body) = get("/good/f%20b.bin", "Range: bytes=199990-\r\n");
    assert!(head.contains("content-range: bytes 199990-199999/200000"));
    assert_eq!(body, &data[199_990..]);
    let (head, body) = get("/good/f%20b.bin", "");
    assert!(head.starts_with("http/1.1 200 "), "{head}");
    assert_eq!(body, data);
    let (head, _) = get("/good/f%20b.bin", "Range: bytes=200000-\r\n");
    assert!(head.starts_with("http/1.1 416 "), "{head}");
    let (head, body) = get("/norange/f%20b.bin", "Range: bytes=0-9\r\n");
    assert!(head.starts_with("http/1.1 200 ") && body == data, "{head}");
    let (head, body) = get("/corrupt/f%20b.bin", "Range: bytes=0-65543\r\n");
    assert!(head.starts_with("http/1.1 206 "), "{head}");
    let wrong: Vec<usize> = (0..body.len()).filter(|&i| body[i] != data[i]).collect();
    assert_eq!(wrong, [7, 65_543], "the corrupted offsets");
    let (head, _) = get("/notfound/f%20b.bin", "");
    assert!(head.starts_with("http/1.1 404 "), "{head}");
    let (head, _) = get("/good/missing.bin", "");
    assert!(head.starts_with("http/1.1 404 "), "{head}");
    let (head, _) = get("/redirect2/f%20b.bin", "");
    let to = format!(
        "location: {}/redirect1/f%20b.bin\r\n",
        server.base.to_ascii_lowercase()
    );
    assert!(
        head.starts_with("http/1.1 302 ") && head.contains(&to),
        "{head}"
    );
    let (head, _) = get("/redirect1/f%20b.bin", "");
    assert!(head.contains("location: /good/f%20b.bin\r\n"), "{head}");
    assert_eq!(server.requests("good"), 5);
    assert_eq!(server.bytes("good"), 10 + 10 + 200_000);

    // `short` answers the range asked for with half its bytes.
    let close = "Range: bytes=0-999\r\nConnection: close\r\n";
    let (head, body) = get("/short/f%20b.bin", close);
    assert!(
        head.contains("content-range: bytes 0-999/200000\r\n"),
        "{head}"
    );
    assert!(head.contains("content-length: 500\r\n"), "{head}");
    assert_eq!(body, &data[..500]);
    let mut rest = Vec::new();
    let end = conn.read_to_end(&mut rest).unwrap();
    assert_eq!(end, 0, "open after `Connection: close`");

    // `stall` sends the headers, then nothing; the server still stops at once.
    let stream = TcpStream::connect(addr_of(&server)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut conn = BufReader::new(stream);
    let request = "GET /stall/f%20b.bin HTTP/1.1\r\nRange: bytes=0-9\r\n\r\n";
    conn.get_mut().write_all(request.as_bytes()).unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 206 "), "{line}");
    let mut rest = Vec::new();
    let silent = conn.read_to_end(&mut rest);
    assert!(silent.is_err(), "`stall` ended: {silent:?} {rest:?}");
    let start = Instant::now();
    drop(server);
    assert!(start.elapsed() < Duration::from_secs(2), "slow to stop");
}
