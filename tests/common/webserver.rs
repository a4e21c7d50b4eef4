//! An HTTP/1.1 file server of the tests' own on 127.0.0.1, for web seeds (BEP 19): files under a root
//! at `/<mode>/<percent-encoded path>`, the mode choosing good or bad behaviour ([`MODES`]), with
//! `Range` support, keep-alive, per-mode request and byte counters, and an optional byte rate. One std
//! thread per connection; all of them stop and are joined when the server is dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What each path prefix does:
/// - `good`: `Range: bytes=a-b` / `a-` / `-n` → 206 with `Content-Range`; none → 200; 416 when
///   unsatisfiable; 404 for a missing file.
/// - `corrupt`: like `good`, with the byte at every file offset ≡ 7 (mod 64 KiB) flipped.
/// - `notfound`: 404 always.
/// - `norange`: ignores `Range`: 200 with the whole file.
/// - `redirect2`: 302 to `/redirect1/…` (absolute URL), which 302s to `/good/…` (relative).
/// - `short`: a 206 whose `Content-Range` is the range asked for but whose `Content-Length` and body
///   are half of it: a well-formed response that ends early.
/// - `stall`: the 206 headers, then silence until the client hangs up (or the server stops).
pub const MODES: &[&str] = &[
    "good",
    "corrupt",
    "notfound",
    "norange",
    "redirect2",
    "redirect1",
    "short",
    "stall",
];

/// Body bytes read and written at a time (and the pacing step).
const CHUNK: usize = 64 * 1024;
/// `corrupt` flips one byte in every this many (at file offsets ≡ [`CORRUPT_AT`]).
const CORRUPT_EVERY: u64 = 64 * 1024;
const CORRUPT_AT: u64 = 7;
/// How often blocked reads and sleeps look at the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// A write blocked this long (a client that stopped reading) ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection idle this long between requests is closed; a stall lasts this long at most.
const IDLE: Duration = Duration::from_secs(60);
/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Connections accepted at most (later ones are closed at once): a bound, far above any test's need.
const MAX_CONNECTIONS: u64 = 10_000;
/// Requests served on one connection at most.
const MAX_REQUESTS: usize = 100_000;

/// Requests and body bytes sent for one mode.
#[derive(Default)]
struct Counter {
    requests: AtomicU64,
    bytes: AtomicU64,
}

struct Shared {
    root: PathBuf,
    base: String,
    stop: AtomicBool,
    /// Bytes per second for all connections together; 0: unlimited.
    rate: u64,
    /// Pacing state: (since, bytes sent since then).
    pace: Mutex<(Instant, u64)>,
    counters: Vec<Counter>,
}

/// The running server; stopped (every thread joined, within about [`WRITE_TIMEOUT`]) on drop.
pub struct WebServer {
    /// `http://127.0.0.1:P`
    pub base: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl WebServer {
    /// Serves the files under `root`, as fast as it can.
    pub fn start(root: &Path) -> WebServer {
        Self::paced(root, 0)
    }

    /// Serves the files under `root`, sending at most `bytes_per_sec` body bytes a second over all
    /// connections together (0: no limit).
    pub fn paced(root: &Path, bytes_per_sec: u64) -> WebServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            base: base.clone(),
            stop: AtomicBool::new(false),
            rate: bytes_per_sec,
            pace: Mutex::new((Instant::now(), 0)),
            counters: MODES.iter().map(|_| Counter::default()).collect(),
        });
        let s = shared.clone();
        let thread = std::thread::spawn(move || accept_loop(&listener, &s));
        WebServer {
            base,
            shared,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:P/<mode>/<rel>` (`rel` given already percent-encoded).
    pub fn url(&self, mode: &str, rel: &str) -> String {
        format!("{}/{mode}/{rel}", self.base)
    }

    /// Requests received so far for `mode`.
    pub fn requests(&self, mode: &str) -> u64 {
        self.counter(mode).requests.load(Ordering::SeqCst)
    }

    /// Body bytes sent so far for `mode`.
    pub fn bytes(&self, mode: &str) -> u64 {
        self.counter(mode).bytes.load(Ordering::SeqCst)
    }

    fn counter(&self, mode: &str) -> &Counter {
        let i = MODES.iter().position(|m| *m == mode);
        &self.shared.counters[i.unwrap_or_else(|| panic!("no mode {mode:?}"))]
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, s: &Arc<Shared>) {
    let mut conns = Vec::new();
    let mut accepted = 0u64;
    // Bounded by the server's lifetime: the stop flag is set on drop.
    while !s.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) if accepted < MAX_CONNECTIONS => {
                accepted += 1;
                let s = s.clone();
                conns.push(std::thread::spawn(move || serve(stream, &s)));
                conns.retain(|c: &JoinHandle<()>| !c.is_finished());
            }
            Ok(_) => {} // over the bound: dropped, so closed
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    for c in conns {
        let _ = c.join();
    }
}

/// One request's head, as far as the server cares.
struct Request {
    method: String,
    target: String,
    range: Option<String>,
    keep_alive: bool,
}

fn serve(mut stream: TcpStream, s: &Shared) {
    let ok = stream.set_nonblocking(false).is_ok()
        && stream.set_read_timeout(Some(POLL)).is_ok()
        && stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_ok()
        && stream.set_nodelay(true).is_ok();
    let mut buf = Vec::new();
    for _ in 0..MAX_REQUESTS {
        if !ok {
            return;
        }
        let Some(req) = read_head(&mut stream, &mut buf, s) else {
            return;
        };
        if !respond(&mut stream, &req, s) || !req.keep_alive {
            return;
        }
    }
}

/// Reads up to the end of a request head (keeping what follows in `buf`); `None` when the client hung
/// up, sent junk, stayed idle too long, or the server is stopping.
fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>, s: &Shared) -> Option<Request> {
    let start = Instant::now();
    let mut tmp = [0u8; 4096];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_HEAD || s.stop.load(Ordering::SeqCst) || start.elapsed() > IDLE {
            return None;
        }
        match stream.read(&mut tmp) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let (method, target, version) = (first.next()?, first.next()?, first.next()?);
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        range: None,
        keep_alive: version == "HTTP/1.1",
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("range") {
            req.range = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("connection") {
            req.keep_alive = value.eq_ignore_ascii_case("keep-alive")
                || (req.keep_alive && !value.eq_ignore_ascii_case("close"));
        }
    }
    Some(req)
}

/// Answers one request; `false` when the connection must close.
fn respond(stream: &mut TcpStream, req: &Request, s: &Shared) -> bool {
    let target = req.target.strip_prefix('/').unwrap_or(&req.target);
    let (mode, rest) = target.split_once('/').unwrap_or((target, ""));
    let Some(index) = MODES.iter().position(|m| *m == mode) else {
        return reply(stream, "404 Not Found", &[]);
    };
    let counter = &s.counters[index];
    counter.requests.fetch_add(1, Ordering::SeqCst);
    match mode {
        "notfound" => return reply(stream, "404 Not Found", &[]),
        "redirect2" => {
            let to = format!("{}/redirect1/{rest}", s.base);
            return reply(stream, "302 Found", &[("Location", to)]);
        }
        "redirect1" => {
            return reply(
                stream,
                "302 Found",
                &[("Location", format!("/good/{rest}"))],
            )
        }
        _ => {}
    }
    let Some((file, len)) = open(&s.root, rest) else {
        return reply(stream, "404 Not Found", &[]);
    };
    let range = match req.range.as_deref().filter(|_| mode != "norange") {
        None => None,
        Some(spec) => match parse_range(spec, len) {
            Some(r) => Some(r),
            None => {
                let what = format!("bytes */{len}");
                return reply(
                    stream,
                    "416 Range Not Satisfiable",
                    &[("Content-Range", what)],
                );
            }
        },
    };
    let (first, last) = range.unwrap_or((0, len.saturating_sub(1)));
    let mut count = if len == 0 { 0 } else { last + 1 - first };
    if mode == "short" {
        count /= 2;
    }
    let mut headers = vec![
        ("Content-Length", count.to_string()),
        ("Content-Type", "application/octet-stream".to_string()),
        ("Accept-Ranges", "bytes".to_string()),
    ];
    let status = if range.is_some() {
        headers.push(("Content-Range", format!("bytes {first}-{last}/{len}")));
        "206 Partial Content"
    } else {
        "200 OK"
    };
    if !write_head(stream, status, &headers) || req.method == "HEAD" {
        return req.method == "HEAD";
    }
    match mode {
        "stall" => {
            stall(stream, s);
            false
        }
        _ => send_body(stream, s, counter, &file, first, count, mode == "corrupt"),
    }
}

/// `root/<decoded rel>` opened, with its length; `None` unless it is a regular file inside `root`.
fn open(root: &Path, rel: &str) -> Option<(std::fs::File, u64)> {
    let rel = rel.split('?').next().unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(rel)
        .decode_utf8()
        .ok()?;
    let rel = Path::new(decoded.as_ref());
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    if decoded.is_empty() || !plain {
        return None;
    }
    let file = std::fs::File::open(root.join(rel)).ok()?;
    let meta = file.metadata().ok()?;
    meta.is_file().then_some((file, meta.len()))
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` as an inclusive range within `len`; `None` if unsatisfiable.
fn parse_range(spec: &str, len: u64) -> Option<(u64, u64)> {
    let (a, b) = spec.trim().strip_prefix("bytes=")?.split_once('-')?;
    let (first, last) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.checked_sub(n.min(len))?, len.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, len.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(len.checked_sub(1)?),
        ),
    };
    (first <= last && first < len).then_some((first, last))
}

fn write_head(stream: &mut TcpStream, status: &str, headers: &[(&str, String)]) -> bool {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).is_ok()
}

/// A reply with no body.
fn reply(stream: &mut TcpStream, status: &str, extra: &[(&str, String)]) -> bool {
    let mut headers = vec![("Content-Length", "0".to_string())];
    headers.extend(extra.iter().cloned());
    write_head(stream, status, &headers)
}

/// Sends `count` bytes of `file` from `first`, paced, flipping bytes if `corrupt`; `false` on error.
fn send_body(
    stream: &mut TcpStream,
    s: &Shared,
    counter: &Counter,
    file: &std::fs::File,
    first: u64,
    count: u64,
    corrupt: bool,
) -> bool {
    let mut buf = vec![0u8; CHUNK];
    let mut offset = first;
    while offset < first + count {
        let n = (first + count - offset).min(CHUNK as u64) as usize;
        if file.read_exact_at(&mut buf[..n], offset).is_err() || !pace(s, n as u64) {
            return false;
        }
        if corrupt {
            let mut at = offset / CORRUPT_EVERY * CORRUPT_EVERY + CORRUPT_AT;
            if at < offset {
                at += CORRUPT_EVERY;
            }
            while at < offset + n as u64 {
                buf[(at - offset) as usize] ^= 0x5a;
                at += CORRUPT_EVERY;
            }
        }
        if stream.write_all(&buf[..n]).is_err() {
            return false;
        }
        counter.bytes.fetch_add(n as u64, Ordering::SeqCst);
        offset += n as u64;
    }
    true
}

/// Waits until `n` more bytes fit the rate; `false` if the server is stopping.
fn pace(s: &Shared, n: u64) -> bool {
    if s.rate == 0 {
        return !s.stop.load(Ordering::SeqCst);
    }
    let due = {
        let mut p = s.pace.lock().unwrap();
        let now = Instant::now();
        let caught_up = p.0 + Duration::from_secs_f64(p.1 as f64 / s.rate as f64);
        // Idle time earns no burst later.
        if now.duration_since(caught_up) > Duration::from_millis(100) {
            *p = (now, 0);
        }
        p.1 += n;
        p.0 + Duration::from_secs_f64(p.1 as f64 / s.rate as f64)
    };
    loop {
        if s.stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= due {
            return true;
        }
        std::thread::sleep((due - now).min(POLL));
    }
}

/// Sends nothing until the client hangs up, the server stops, or [`IDLE`] has passed.
fn stall(stream: &mut TcpStream, s: &Shared) {
    let start = Instant::now();
    let mut tmp = [0u8; 1024];
    while !s.stop.load(Ordering::SeqCst) && start.elapsed() < IDLE {
        match stream.read(&mut tmp) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// The server's socket address (for raw requests).
pub fn addr_of(server: &WebServer) -> SocketAddr {
    server
        .base
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap()
}
