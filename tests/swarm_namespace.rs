//! Issue 17: pixtorrent joins a swarm of 20 real peers, each at its own address in a network namespace
//! of the test's own (python3-libtorrent seeders and leechers, an aria2c and a Transmission leecher),
//! found through a real opentracker on the host side of the veth; every copy ends byte-identical.
//!
//! The libtorrent peers live in two python processes (`scripts/bench/swarm_peers.py`, the swarm
//! benchmark's host: one libtorrent session per peer, each bound to its own address, DHT, LSD, UPnP and
//! NAT-PMP off, several connections per IP allowed), the seeders' uploads rate-limited so that no one
//! seeder can serve a leecher alone. aria2c binds its address with `--interface`, Transmission (which
//! ignores peers on 127.0.0.0/8) the namespace's own address. pixtorrent runs on the host side and
//! starts with the other leechers. Checked at the end: pixtorrent's files equal the payload and it got
//! bytes from more than one peer; every libtorrent leecher said `DONE` (every piece hash-checked) and
//! its files equal the payload, with no hash failure anywhere in the swarm; aria2c exited 0 and
//! Transmission reached 100%, both with files equal to the payload.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::netns::NetNs;
use common::payload::{assert_same_tree, Payload};
use common::seeders::{python_with_libtorrent, Proc, Transmission};
use common::{expect_success, pixtorrent, tool, wait_for_seeders, Opentracker};

/// libtorrent seeders, each at its own address.
const SEEDERS: u32 = 4;
/// libtorrent leechers, each at its own address; with the seeders, aria2c and Transmission: 20 peers.
const LT_LEECHERS: u32 = 14;
/// The payload: the Internet-Archive-shaped layout (ten files, one empty, most not piece-aligned),
/// 512 KiB pieces, 46 of them.
const SIZE: u64 = 24_000_013;
/// Each seeder's upload limit, bytes/s: 4 seeders put the payload into the swarm in about 4 s, and a
/// leecher served by one seeder alone would take 16 s: leechers trade among themselves.
const SEEDER_UPLOAD: u64 = 1_500_000;
/// The port every libtorrent peer in the namespace listens on, each at its own address.
const PEER_PORT: u16 = 6881;
/// aria2c's port, at its own address (another port, should it listen on every address).
const ARIA2_PORT: u16 = 6991;
/// How long the seeders may take to check the data and hear from the tracker, and the leechers to
/// hear from it.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// From pixtorrent's start until every leecher of the swarm has everything (15-17 s on 2 busy cores).
const SWARM_TIMEOUT: Duration = Duration::from_secs(60);

/// One python process hosting several libtorrent peers (`swarm_peers.py`) in the namespace.
struct LtHost {
    proc: Proc,
    /// The peers' names and addresses.
    peers: Vec<(String, Ipv4Addr)>,
    /// Leechers download into `dir/NAME`; seeders share `dir`.
    dir: PathBuf,
}

impl LtHost {
    /// Starts `swarm_peers.py` in `ns` with a peer per address in `ips`: seeders `seed1..` sharing
    /// `dir`, each uploading at most [`SEEDER_UPLOAD`] bytes/s, or leechers `leech1..` with no limit.
    fn start(ns: &NetNs, torrent: &Path, dir: &Path, seed: bool, ips: &[Ipv4Addr]) -> LtHost {
        let python = python_with_libtorrent().expect("checked before");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench/swarm_peers.py");
        let (prefix, upload) = if seed {
            ("seed", SEEDER_UPLOAD)
        } else {
            ("leech", 0)
        };
        let peers: Vec<(String, Ipv4Addr)> = (1..)
            .zip(ips)
            .map(|(k, ip)| (format!("{prefix}{k}"), *ip))
            .collect();
        let mut cmd = ns.command(&python);
        cmd.arg(script)
            .arg(if seed { "--seed" } else { "--leech" })
            .arg("--torrent")
            .arg(torrent)
            .arg("--dir")
            .arg(dir);
        for (name, ip) in &peers {
            cmd.args(["--peer", &format!("{name},{ip}:{PEER_PORT},0,{upload}")]);
        }
        // `ip netns exec` execs python: its parent is this process.
        cmd.args(["--stats-secs", "5", "--max-secs", "300"])
            .args(["--ready-timeout", &READY_TIMEOUT.as_secs().to_string()])
            .args(["--parent-pid", &std::process::id().to_string()]);
        let proc = Proc::spawn(if seed { "lt seeders" } else { "lt leechers" }, cmd);
        LtHost {
            proc,
            peers,
            dir: dir.to_path_buf(),
        }
    }

    /// Waits up to `limit` for the line starting with `marker` (`ALLREADY`, `ALLDONE`); panics with
    /// the host's output on an `ERROR` line, its exit, or the time running out.
    fn wait_for(&mut self, marker: &str, limit: Duration) {
        let line = self
            .proc
            .wait_line(limit, |l| l.starts_with(marker) || l.starts_with("ERROR "));
        if !line.as_deref().is_some_and(|l| l.starts_with(marker)) {
            panic!(
                "no {marker} from the libtorrent peers within {limit:?}: {line:?}\n{}",
                self.proc.dump(30)
            );
        }
    }

    /// The stdout lines starting with `prefix`.
    fn lines(&self, prefix: &str) -> Vec<String> {
        let lines = self.proc.stdout();
        lines
            .into_iter()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }

    /// 16 KiB blocks the leechers received from `ip` (their `PEER NAME IP:PORT blocks=N` lines).
    fn blocks_from(&self, ip: Ipv4Addr) -> u64 {
        let from = format!(" {ip}:");
        let lines = self.lines("PEER ");
        let blocks = lines.iter().filter(|l| l.contains(&from));
        blocks
            .filter_map(|l| l.rsplit_once("blocks=")?.1.parse::<u64>().ok())
            .sum()
    }
}

/// aria2c leeching `torrent` into `out`, inside `ns` at `ip`; it exits once complete.
fn aria2_leecher(ns: &NetNs, aria2: &Path, ip: Ipv4Addr, torrent: &Path, out: &Path) -> Proc {
    let mut cmd = ns.command(aria2);
    cmd.arg("--no-conf")
        .arg(format!("--dir={}", out.display()))
        .arg(format!("--interface={ip}"))
        .arg(format!("--listen-port={ARIA2_PORT}"))
        .arg(format!("--stop-with-process={}", std::process::id()))
        .args(common::seeders::ARIA2_QUIET)
        .args(["--bt-tracker-connect-timeout=10", "--bt-tracker-timeout=10"])
        .arg(torrent);
    Proc::spawn("aria2c leecher", cmd)
}

/// Every program the test runs, checked before anything starts; `false` (skipped) if one is missing.
fn tools_present() -> bool {
    let programs = [
        "opentracker",
        "aria2c",
        "transmission-daemon",
        "transmission-remote",
    ];
    programs.iter().all(|p| tool(p).is_some()) && python_with_libtorrent().is_some()
}

/// The swarm. Fields drop in order: the processes (each killed by pid), the tracker, the namespace
/// (veth and route too), then the directory.
struct Swarm {
    leechers: LtHost,
    aria2: Proc,
    aria2_out: PathBuf,
    transmission: Transmission,
    transmission_out: PathBuf,
    seeders: LtHost,
    _tracker: Opentracker,
    payload: Payload,
    ns: NetNs,
    dir: tempfile::TempDir,
}

impl Swarm {
    /// Namespace, payload, tracker, the seeders (checked and announced), then the leechers; returns
    /// once the libtorrent leechers have heard from the tracker. `None` (skipped) without root.
    fn start() -> Option<Swarm> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ns = NetNs::create()?;
        let ips = ns
            .add_peer_addresses(SEEDERS + LT_LEECHERS + 1)
            .expect("peer addresses in the namespace");
        let mut payload = Payload::generate(dir.path(), SIZE, "http://127.0.0.1:9/announce");
        let tracker = Opentracker::start_on(&[payload.info_hash], &[ns.host_ip])?;
        let url = tracker.http_on(ns.host_ip);
        payload.set_announce(&url);
        let (seed_ips, rest) = ips.split_at(SEEDERS as usize);
        let (leech_ips, aria2_ip) = rest.split_at(LT_LEECHERS as usize);
        let mut seeders = LtHost::start(&ns, &payload.torrent, &payload.save_dir, true, seed_ips);
        seeders.wait_for("ALLREADY", READY_TIMEOUT);
        wait_for_seeders(&url, payload.info_hash, i64::from(SEEDERS), READY_TIMEOUT);
        let leech_dir = dir.path().join("lt");
        std::fs::create_dir_all(&leech_dir).expect("leechers' directory");
        let leechers = LtHost::start(&ns, &payload.torrent, &leech_dir, false, leech_ips);
        let aria2_out = dir.path().join("aria2");
        let aria2 = tool("aria2c").expect("checked before");
        let aria2 = aria2_leecher(&ns, &aria2, aria2_ip[0], &payload.torrent, &aria2_out);
        let transmission_out = dir.path().join("transmission");
        std::fs::create_dir_all(&transmission_out).expect("Transmission's directory");
        let hash = payload.info_hash;
        let transmission = Transmission::leech(&ns, &payload.torrent, hash, &transmission_out)?;
        let mut swarm = Swarm {
            leechers,
            aria2,
            aria2_out,
            transmission,
            transmission_out,
            seeders,
            _tracker: tracker,
            payload,
            ns,
            dir,
        };
        swarm.leechers.wait_for("ALLREADY", READY_TIMEOUT);
        Some(swarm)
    }

    /// What kind of peer is at `ip`, for the report.
    fn kind(&self, ip: IpAddr) -> &'static str {
        let is = |host: &LtHost| host.peers.iter().any(|(_, a)| IpAddr::V4(*a) == ip);
        if is(&self.seeders) {
            "libtorrent seeder"
        } else if is(&self.leechers) {
            "libtorrent leecher"
        } else if ip == IpAddr::V4(self.ns.ns_ip) {
            "Transmission"
        } else {
            "aria2c"
        }
    }
}

/// `peer ADDR (CLIENT): N bytes` lines of pixtorrent's summary: bytes per peer IP (a peer that dialled
/// pixtorrent shows up with an ephemeral port).
fn bytes_by_ip(stdout: &[String]) -> BTreeMap<IpAddr, u64> {
    let mut by_ip = BTreeMap::new();
    for line in stdout.iter().map(|l| l.trim()) {
        let Some(rest) = line.strip_prefix("peer ") else {
            continue;
        };
        let (addr, rest) = rest.split_once(" (").expect("peer ADDR (CLIENT): N bytes");
        let (_, bytes) = rest
            .rsplit_once("): ")
            .expect("peer ADDR (CLIENT): N bytes");
        let ip = addr.rsplit_once(':').expect("IP:PORT").0;
        let ip: IpAddr = ip.parse().expect("an IPv4 address");
        let digits: String = bytes.chars().take_while(char::is_ascii_digit).collect();
        let bytes: u64 = digits.parse().expect("a byte count");
        *by_ip.entry(ip).or_default() += bytes;
    }
    by_ip
}

/// pixtorrent's download: exits 0, files equal the payload, bytes from more than one peer.
fn check_pixtorrent(swarm: &Swarm, px: &mut Proc, out: &Path) {
    expect_success(px, SWARM_TIMEOUT);
    assert_same_tree(&swarm.payload.root(), &out.join(swarm.payload.name()));
    let by_ip = bytes_by_ip(&px.stdout());
    for (ip, bytes) in &by_ip {
        eprintln!(
            "pixtorrent got {bytes} bytes from {ip} ({})",
            swarm.kind(*ip)
        );
    }
    let senders = by_ip.values().filter(|b| **b > 0).count();
    assert!(
        senders > 1,
        "pixtorrent got bytes from {senders} peer(s), expected several:\n{}",
        px.stdout().join("\n")
    );
    let total: u64 = by_ip.values().sum();
    assert!(
        total >= swarm.payload.total,
        "pixtorrent's summary counts {total} bytes from peers, the payload is {}",
        swarm.payload.total
    );
}

/// Every libtorrent leecher: `DONE`, no hash failure in the swarm, files equal the payload.
fn check_libtorrent(swarm: &mut Swarm, limit: Duration) {
    swarm.leechers.wait_for("ALLDONE", limit);
    let done = swarm.leechers.lines("DONE ");
    for (name, _) in &swarm.leechers.peers {
        let said = |l: &String| l.split(' ').nth(1) == Some(name.as_str());
        assert!(done.iter().any(said), "no DONE from {name}: {done:?}");
        let root = swarm.leechers.dir.join(name).join(swarm.payload.name());
        assert_same_tree(&swarm.payload.root(), &root);
    }
    let mut fails = swarm.leechers.lines("HASHFAIL ");
    fails.extend(swarm.seeders.lines("HASHFAIL "));
    assert!(fails.is_empty(), "hash failures in the swarm: {fails:?}");
    let from_px = swarm.leechers.blocks_from(swarm.ns.host_ip);
    eprintln!("libtorrent leechers: all {LT_LEECHERS} done, {from_px} blocks from pixtorrent");
}

/// aria2c: exits 0 within `limit`, files equal the payload.
fn check_aria2(swarm: &mut Swarm, limit: Duration) {
    let status = swarm.aria2.wait_exit(limit);
    assert!(
        status.is_some_and(|s| s.success()),
        "aria2c: {status:?}\n{}",
        swarm.aria2.dump(20)
    );
    let root = swarm.aria2_out.join(swarm.payload.name());
    assert_same_tree(&swarm.payload.root(), &root);
}

/// Transmission: 100% within `limit`, files (once it has stopped the torrent) equal the payload.
fn check_transmission(swarm: &mut Swarm, limit: Duration) {
    if let Err(info) = swarm.transmission.wait_done(limit) {
        panic!(
            "Transmission did not finish:\n{info}\n{}",
            swarm.transmission.proc.dump(20)
        );
    }
    // Stopping the torrent closes its files (its write cache is flushed).
    let hash = swarm.payload.info_hash.to_hex();
    swarm.transmission.remote(&["-t", &hash, "--stop"]);
    std::thread::sleep(Duration::from_millis(500));
    // Transmission 3.00 does not create zero-length files: make them, so that the comparison covers the
    // rest.
    let root = swarm.transmission_out.join(swarm.payload.name());
    for (rel, len) in &swarm.payload.files {
        let path = root.join(rel);
        if *len == 0 && !path.exists() {
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("create a directory");
            std::fs::File::create(&path).expect("create an empty file");
        }
    }
    assert_same_tree(&swarm.payload.root(), &root);
}

#[test]
fn pixtorrent_in_a_swarm_of_twenty_peers_every_copy_identical() {
    if !tools_present() {
        return;
    }
    let start = Instant::now();
    let Some(mut swarm) = Swarm::start() else {
        return;
    };
    eprintln!("swarm of 20 peers up in {:.1?}", start.elapsed());
    let joined = Instant::now();
    let out = swarm.dir.path().join("pixtorrent");
    let torrent = swarm.payload.torrent.clone();
    let (mut px, _) = pixtorrent("pixtorrent", &torrent, &out, swarm.ns.host_ip, &[]);
    check_pixtorrent(&swarm, &mut px, &out);
    let left = || SWARM_TIMEOUT.saturating_sub(joined.elapsed());
    check_libtorrent(&mut swarm, left());
    check_aria2(&mut swarm, left());
    check_transmission(&mut swarm, left());
    eprintln!(
        "every peer done and verified {:.1?} after pixtorrent joined; {:.1?} in all",
        joined.elapsed(),
        start.elapsed()
    );
}
