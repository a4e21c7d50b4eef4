//! A 60 s flood of announces for random info-hashes (and for a few hot swarms, from ever new peer ids)
//! against `pixtorrent-tracker` with small `--max-torrents` / `--max-peers-total`, on the memory
//! store and on a Redis the test starts, both at once. Meanwhile the tracker's resident memory and
//! Redis's `used_memory` are sampled every half second and must stay under bounds derived from the
//! configured limits, and real clients on a swarm that existed before the flood (a libtorrent seeder,
//! an aria2c leecher) keep announcing successfully throughout and finish their transfer,
//! byte-identical. The flood must be large enough that, unbounded, it would have passed the memory
//! bound several times over, so the test can fail.
//!
//! The load generator is in the test: keep-alive connections, each bounded in requests and time.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::payload::{assert_same_tree, Payload, SMALL};
use common::seeders::{aria2_leecher, LtOptions, LtPeer, Proc};
use common::servers::{Redis, TrackerProc};
use common::{scrape, tool};

/// How long the flood lasts.
const FLOOD: Duration = Duration::from_secs(60);
const MAX_TORRENTS: u64 = 1_500;
const MAX_PEERS: u64 = 6_000;
/// Swarms made before the flood that it then fills with new peer ids (up to `MAX_PEERS`).
const HOT_SWARMS: usize = 16;
/// Flooding connections per tracker.
const FLOODERS: usize = 4;
/// What one flooding connection sends at most (a bound; time ends it first).
const MAX_PER_FLOODER: u64 = 2_000_000;
/// The seeder's upload limit: the 8 MB payload takes some 50 s, so the leecher announces all
/// through the flood.
const SEED_RATE: u64 = 160_000;
/// The tracker's interval (its minimum): libtorrent re-announces every 10 s; aria2c is told 5 s.
const INTERVAL: &str = "10";
const ARIA2_INTERVAL: u32 = 5;
/// What a store may hold per swarm and per peer, with room to spare: `store.rs` measured about
/// 580 bytes for a one-peer swarm in memory and 510 in Redis, 130 and 190 for a further peer.
const SWARM_BYTES: u64 = 1_200;
const PEER_BYTES: u64 = 400;
/// Fixed slack: allocator arenas and caches, connection buffers (the tracker); Redis's own.
const RSS_SLACK: u64 = 8 << 20;
const REDIS_SLACK: u64 = 2 << 20;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pixtorrent-tracker"))
}

/// What an answered announce of the flood would add to a store without bounds, on average: half
/// are a new one-peer swarm (580 bytes in memory, 510 in Redis), half a new peer in a hot swarm
/// (130, 190); the lower figures.
const UNBOUNDED_BYTES: u64 = (510 + 130) / 2;

/// The most the bounded store may add over its memory before the flood.
fn bound_extra() -> u64 {
    MAX_TORRENTS * SWARM_BYTES + MAX_PEERS * PEER_BYTES
}

/// xorshift64*: random enough for ids, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn id(&mut self) -> [u8; 20] {
        let mut id = [0u8; 20];
        for chunk in id.chunks_mut(8) {
            let n = chunk.len();
            chunk.copy_from_slice(&self.next().to_le_bytes()[..n]);
        }
        id
    }
}

fn esc(b: &[u8]) -> String {
    b.iter().map(|b| format!("%{b:02X}")).collect()
}

fn announce_path(hash: &[u8; 20], peer: &[u8; 20], port: u16) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left=1000&compact=1\
         &event=started",
        esc(hash),
        esc(peer)
    )
}

/// What the flood saw.
#[derive(Debug, Default)]
struct Tally {
    /// Replies with peers.
    ok: AtomicU64,
    /// Replies with a failure reason (the bounds).
    refused: AtomicU64,
    /// Connections lost or replies unreadable.
    errors: AtomicU64,
}

/// One keep-alive request and its reply body; `None` on any error. Bounded: 64 header lines, a
/// 64 KiB body, the stream's read timeout.
fn exchange(r: &mut BufReader<TcpStream>, path: &str) -> Option<Vec<u8>> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    r.get_mut().write_all(req.as_bytes()).ok()?;
    let mut len = None;
    let mut line = String::new();
    for i in 0.. {
        line.clear();
        if i > 64 || r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if i == 0 && !line.starts_with("HTTP/1.1 200") {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = vec![0; len.filter(|&n| n <= 64 << 10)?];
    r.read_exact(&mut body).ok()?;
    Some(body)
}

/// One flooding connection until `end`: half the announces for a new random swarm, half for a hot
/// one, each from a new peer id. Reconnects after an error (after a short pause).
fn flooder(addr: SocketAddr, hot: &[[u8; 20]], seed: u64, end: Instant, tally: &Tally) {
    let mut rng = Rng(seed | 1);
    let mut conn: Option<BufReader<TcpStream>> = None;
    for _ in 0..MAX_PER_FLOODER {
        if Instant::now() >= end {
            return;
        }
        let r = match conn.as_mut() {
            Some(r) => r,
            None => match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    conn.insert(BufReader::new(s))
                }
                Err(_) => {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        let hash = if rng.next() % 2 == 0 {
            rng.id()
        } else {
            hot[rng.next() as usize % hot.len()]
        };
        let port = 1024 + (rng.next() % 60_000) as u16;
        match exchange(r, &announce_path(&hash, &rng.id(), port)) {
            Some(body) if contains(&body, b"failure reason") => &tally.refused,
            Some(_) => &tally.ok,
            None => {
                conn = None;
                &tally.errors
            }
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A process's resident memory, bytes.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Redis's `used_memory`, bytes (INFO over RESP, bounded by a timeout and 64 KiB).
fn redis_used(port: u16) -> Option<u64> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n").ok()?;
    let mut r = BufReader::new(s).take(64 << 10);
    let mut line = String::new();
    for _ in 0..200 {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(v) = line.strip_prefix("used_memory:") {
            return v.trim().parse().ok();
        }
    }
    None
}

/// A series from the tracker's `/metrics`.
fn metric(addr: SocketAddr, series: &str) -> Option<u64> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let body = exchange(&mut BufReader::new(s), "/metrics")?;
    let text = String::from_utf8(body).ok()?;
    let line = text.lines().find(|l| l.starts_with(series))?;
    line[series.len()..].trim().parse().ok()
}

/// The largest of `sample()` every half second until `stop`; bounded by `FLOOD` and a margin.
fn peak(stop: &AtomicBool, mut sample: impl FnMut() -> Option<u64>) -> u64 {
    let end = Instant::now() + FLOOD + Duration::from_secs(30);
    let mut max = 0;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        max = max.max(sample().unwrap_or(0));
        std::thread::sleep(Duration::from_millis(500));
    }
    max
}

/// One store under the flood; `redis`: its port (the store is Redis) or `None` (memory).
fn flood_one(dir: &Path, redis: Option<u16>) {
    let name = if redis.is_some() { "redis" } else { "memory" };
    let tracker = start_tracker(redis);
    let Some(real) = RealSwarm::start(&dir.join(name), &tracker.announce_url()) else {
        return;
    };
    // The hot swarms exist before the flood, so that it fills them with peers.
    let mut rng = Rng(0x5eed ^ u64::from(tracker.pid()));
    let hot: Vec<[u8; 20]> = (0..HOT_SWARMS).map(|_| rng.id()).collect();
    let mut first = BufReader::new(TcpStream::connect(tracker.http).unwrap());
    for h in &hot {
        exchange(&mut first, &announce_path(h, &rng.id(), 6881)).expect("hot swarm announce");
    }
    drop(first);
    let before = Sample {
        rss: rss(tracker.pid()).expect("tracker RSS"),
        redis: redis.map(|p| redis_used(p).expect("redis used_memory")),
    };
    let start = Instant::now();
    let (tally, peak, swarm_seen) = flood(&tracker, redis, &hot, &mut rng, &real);
    let flood_secs = start.elapsed().as_secs_f64();
    let sent = tally.ok.load(Ordering::Relaxed) + tally.refused.load(Ordering::Relaxed);
    eprintln!(
        "{name}: {sent} announces in {flood_secs:.0} s ({:.0}/s): {tally:?}; before {before:?}, \
         peak {peak:?}; the real swarm had its seeder in {}/{} scrapes",
        sent as f64 / flood_secs,
        swarm_seen.0,
        swarm_seen.1,
    );
    check_bounds(name, &tracker, sent, &before, &peak);
    assert_eq!(
        swarm_seen.0, swarm_seen.1,
        "{name}: the real swarm went missing"
    );
    real.finish(name, start, flood_secs);
}

/// A tracker with the small bounds, on memory or on the Redis at `redis`.
fn start_tracker(redis: Option<u16>) -> TrackerProc {
    let (torrents, peers) = (MAX_TORRENTS.to_string(), MAX_PEERS.to_string());
    let mut args = vec!["--interval", INTERVAL, "--max-torrents", &torrents];
    args.extend(["--max-peers-total", &peers]);
    let url = redis.map(|port| format!("redis://127.0.0.1:{port}/"));
    if let Some(url) = &url {
        args.extend(["--redis", url, "--redis-prefix", "flood"]);
    }
    TrackerProc::start(bin(), &args)
}

/// Memory in use: the tracker's resident set, Redis's `used_memory`; bytes.
#[derive(Debug, Default)]
struct Sample {
    rss: u64,
    redis: Option<u64>,
}

/// The flood, for `FLOOD`, with the peaks of memory sampled meanwhile and the real swarm watched:
/// (what the flood saw, the peaks, (scrapes that found the real seeder, scrapes)).
fn flood(
    tracker: &TrackerProc,
    redis: Option<u16>,
    hot: &[[u8; 20]],
    rng: &mut Rng,
    real: &RealSwarm,
) -> (Tally, Sample, (u32, u32)) {
    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    let end = Instant::now() + FLOOD;
    let seeds: Vec<u64> = (0..FLOODERS).map(|_| rng.next()).collect();
    let (peak, seen) = std::thread::scope(|s| {
        let floods: Vec<_> = seeds
            .into_iter()
            .map(|seed| {
                let (tally, http) = (&tally, tracker.http);
                s.spawn(move || flooder(http, hot, seed, end, tally))
            })
            .collect();
        let (pid, stop) = (tracker.pid(), &stop);
        let r = s.spawn(move || peak(stop, || rss(pid)));
        let q = s.spawn(move || redis.map(|p| peak(stop, || redis_used(p))));
        let seen = watch_swarm(&tracker.announce_url(), real.payload.info_hash, end);
        for f in floods {
            f.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let peak = Sample {
            rss: r.join().unwrap(),
            redis: q.join().unwrap(),
        };
        (peak, seen)
    });
    (tally, peak, seen)
}

/// The flood was large enough to matter, both bounds refused some of it, and memory stayed within
/// what the bounds allow.
fn check_bounds(name: &str, tracker: &TrackerProc, sent: u64, before: &Sample, peak: &Sample) {
    // Unbounded, the flood would have passed the bound twice over.
    let slack = if before.redis.is_some() {
        REDIS_SLACK
    } else {
        RSS_SLACK
    };
    assert!(
        sent * UNBOUNDED_BYTES >= 2 * (bound_extra() + slack),
        "{name}: the flood was too small to test the bounds ({sent} announces)"
    );
    let refused = |reason: &str| {
        let series = format!("pixtorrent_tracker_refused_total{{reason=\"{reason}\"}}");
        metric(tracker.http, &series).unwrap_or(0)
    };
    assert!(refused("max_torrents") > 0, "{name}: no swarm refused");
    assert!(refused("max_peers_total") > 0, "{name}: no peer refused");
    let kib = |b: u64| b >> 10;
    assert!(
        peak.rss <= before.rss + bound_extra() + RSS_SLACK,
        "{name}: tracker RSS {} KiB > {} KiB before + bound {} KiB",
        kib(peak.rss),
        kib(before.rss),
        kib(bound_extra() + RSS_SLACK)
    );
    if let (Some(before), Some(peak)) = (before.redis, peak.redis) {
        assert!(
            peak <= before + bound_extra() + REDIS_SLACK,
            "{name}: redis used_memory {} KiB > {} KiB before + bound {} KiB",
            kib(peak),
            kib(before),
            kib(bound_extra() + REDIS_SLACK)
        );
    }
}

/// The swarm that exists before the flood: a slow libtorrent seeder and an aria2c leecher, both
/// announcing often.
struct RealSwarm {
    payload: Payload,
    seeder: LtPeer,
    aria2: Proc,
    /// aria2c's download directory, and its debug log (its tracker replies).
    out: PathBuf,
    log: PathBuf,
    /// When the seeder was started: its `ANNOUNCED t=` lines count from a little after.
    lt_started: Instant,
}

impl RealSwarm {
    /// Starts both and waits until the tracker counts them; `None` (skipped) without libtorrent or
    /// aria2c.
    fn start(dir: &Path, announce: &str) -> Option<RealSwarm> {
        let payload = Payload::generate(dir, SMALL, announce);
        let opts = LtOptions {
            upload_limit: SEED_RATE,
            announce_secs: Some(5),
            ..LtOptions::default()
        };
        let lt_started = Instant::now();
        let seeder = LtPeer::start(&payload.torrent, &payload.save_dir, &opts)?;
        let (out, log) = (dir.join("aria2"), dir.join("aria2.log"));
        let aria2_opts = [
            "--file-allocation=none".to_string(),
            "--seed-time=0".to_string(),
            format!("--bt-tracker-interval={ARIA2_INTERVAL}"),
            format!("--log={}", log.display()),
            "--log-level=debug".to_string(),
        ];
        let aria2_opts: Vec<&str> = aria2_opts.iter().map(String::as_str).collect();
        let mut aria2 = aria2_leecher(&payload.torrent, &out, &aria2_opts)?;
        wait_swarm(announce, payload.info_hash, &mut aria2);
        Some(RealSwarm {
            payload,
            seeder,
            aria2,
            out,
            log,
            lt_started,
        })
    }

    /// After the flood that began at `start`: aria2c finishes, byte-identical, and both clients
    /// had their announces answered all through.
    fn finish(mut self, name: &str, start: Instant, flood_secs: f64) {
        let status = self.aria2.wait_exit(Duration::from_secs(120));
        assert!(
            status.is_some_and(|s| s.success()),
            "{name}: aria2c {status:?}\n{}",
            self.aria2.dump(20)
        );
        assert_same_tree(&self.payload.root(), &self.out.join(self.payload.name()));
        check_aria2_announces(name, &self.log, flood_secs);
        let offset = start.duration_since(self.lt_started).as_secs_f64();
        check_libtorrent_announces(name, &self.seeder.proc, offset);
        self.seeder.stop();
    }
}

/// Waits (bounded) until the tracker counts the seeder and the leecher.
fn wait_swarm(announce: &str, hash: pixtorrent::types::InfoHash, aria2: &mut Proc) {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < Duration::from_secs(30) {
        last = scrape(announce, hash);
        if last == Some((1, 1)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the swarm did not form: {last:?}\n{}", aria2.dump(20));
}

/// Scrapes the real swarm every second until `end`: (times it had its seeder, scrapes).
fn watch_swarm(announce: &str, hash: pixtorrent::types::InfoHash, end: Instant) -> (u32, u32) {
    let mut seen = (0, 0);
    for _ in 0..1000 {
        if Instant::now() >= end {
            break;
        }
        seen.1 += 1;
        if scrape(announce, hash).is_some_and(|(complete, _)| complete >= 1) {
            seen.0 += 1;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    seen
}

/// aria2c (`--bt-tracker-interval`) announced throughout, and never got a failure.
fn check_aria2_announces(name: &str, log: &Path, flood_secs: f64) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let ok = text.matches("Now processing tracker response.").count();
    let failed = text.matches("Tracker returned failure reason").count();
    eprintln!("{name}: aria2c tracker replies {ok}, failures {failed}");
    assert_eq!(failed, 0, "{name}: aria2c got a failure reason");
    let want = (flood_secs / f64::from(ARIA2_INTERVAL) / 2.0) as usize;
    assert!(
        ok >= want,
        "{name}: aria2c announced {ok} times, want {want}+"
    );
}

/// libtorrent's re-announces got answers all through the flood, which began `offset` seconds into
/// its clock (a little less: the script starts its clock after we start it): no gap over 25 s, and
/// no tracker error or warning.
fn check_libtorrent_announces(name: &str, seeder: &Proc, offset: f64) {
    let lines = seeder.stdout();
    let errors: Vec<_> = lines.iter().filter(|l| l.starts_with("TRACKER ")).collect();
    assert!(errors.is_empty(), "{name}: libtorrent: {errors:?}");
    let times: Vec<f64> = lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix("ANNOUNCED t=")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    eprintln!("{name}: libtorrent announces answered at {times:?} s; the flood from {offset:.1} s");
    let (from, to) = (offset - 2.0, offset + FLOOD.as_secs_f64());
    let mut points = vec![from];
    points.extend(times.iter().copied().filter(|t| (from..to).contains(t)));
    points.push(to);
    assert!(
        points.len() >= 2 + 3,
        "{name}: libtorrent re-announced {} times during the flood: {times:?}",
        points.len() - 2
    );
    for w in points.windows(2) {
        assert!(
            w[1] - w[0] <= 25.0,
            "{name}: libtorrent announce gap {w:?}: {times:?}"
        );
    }
}

#[test]
fn a_flood_stays_within_the_bounds_and_real_clients_keep_announcing() {
    if tool("aria2c").is_none() || tool("redis-server").is_none() {
        return;
    }
    let Some(redis) = Redis::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = redis.port;
    std::thread::scope(|s| {
        let memory = s.spawn(|| flood_one(dir.path(), None));
        let on_redis = s.spawn(|| flood_one(dir.path(), Some(port)));
        let (a, b) = (memory.join(), on_redis.join());
        if let Err(e) = a.and(b) {
            std::panic::resume_unwind(e);
        }
    });
    drop(redis);
}
