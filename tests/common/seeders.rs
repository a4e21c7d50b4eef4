//! Other BitTorrent programs as test peers, each a guard that kills its process by pid when dropped:
//! [`LtPeer`] (libtorrent via `tests/peers/lt_peer.py`), [`BadSeeder`] (`tests/peers/bad_seeder.py`),
//! [`Aria2Seeder`] and [`Transmission`] (in its own [`NetNs`]); plus [`Proc`], a child process whose
//! output lines are collected. rtorrent is in `rtorrent.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pixtorrent::types::InfoHash;

use super::netns::NetNs;
use super::{tool, tools_required, wait_for_tcp};

/// aria2c options of every test run: leaves when its download is done, nothing that reaches out
/// (DHT, LPD, PEX, IPv6) and little output.
pub const ARIA2_QUIET: &[&str] = &[
    "--seed-time=0",
    "--enable-dht=false",
    "--enable-dht6=false",
    "--bt-enable-lpd=false",
    "--enable-peer-exchange=false",
    "--disable-ipv6=true",
    "--summary-interval=0",
    "--console-log-level=warn",
    "--bt-save-metadata=false",
];
/// Lines kept per process: far more than any test prints, a bound if one goes wild.
const MAX_LINES: usize = 100_000;
/// How long a seeder may take to be ready (hash check, listen, first announce).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Environment variables that would send HTTP through a proxy instead of to 127.0.0.1.
const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
];

/// A child process whose stdout and stderr lines are collected by two threads. Dropping it closes its
/// stdin, gives it a moment to exit, then kills it (by pid) and reaps it; if the test is panicking, the
/// last lines are printed.
pub struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
    open_pipes: Arc<AtomicUsize>,
    exited: Option<ExitStatus>,
    /// How long to wait after closing stdin before the kill.
    pub grace: Duration,
}

impl Proc {
    /// Spawns `cmd` with piped stdin/stdout/stderr and no proxy variables.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        for var in PROXY_VARS {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let (out, err) = (Arc::default(), Arc::default());
        let open_pipes = Arc::new(AtomicUsize::new(2));
        collect(child.stdout.take().unwrap(), &out, &open_pipes);
        collect(child.stderr.take().unwrap(), &err, &open_pipes);
        Proc {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            out,
            err,
            open_pipes,
            exited: None,
            grace: Duration::ZERO,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stdout lines so far.
    pub fn stdout(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    /// Stderr lines so far.
    pub fn stderr(&self) -> Vec<String> {
        self.err.lock().unwrap().clone()
    }

    /// Writes one line to the process's stdin.
    pub fn send_line(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
        }
    }

    /// The exit status, if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().unwrap();
        }
        self.exited
    }

    /// Waits up to `limit` for the first stdout line (so far or to come) that `pred` accepts; `None`
    /// when the time is up or the process has exited without one.
    pub fn wait_line(&mut self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let start = Instant::now();
        loop {
            if let Some(line) = self.out.lock().unwrap().iter().find(|l| pred(l)) {
                return Some(line.clone());
            }
            let gone = self.try_status().is_some() && self.open_pipes.load(Ordering::SeqCst) == 0;
            if gone || start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `limit` for the process to exit and its output to be read to the end.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.try_status().is_some() {
                // The pipes close with the process (our programs start no children of their own).
                while self.open_pipes.load(Ordering::SeqCst) > 0 && start.elapsed() < limit {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return self.exited;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Kills the process at once (SIGKILL, by pid) and reaps it.
    pub fn kill(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }

    /// Closes stdin (our scripts stop cleanly on that), waits up to `grace`, then kills.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.stdin = None;
        if self.wait_exit(self.grace).is_none() {
            self.kill();
        }
        self.exited
    }

    /// Both streams, labelled, for failure messages (the last `n` lines of each).
    pub fn dump(&self, n: usize) -> String {
        let tail = |lines: Vec<String>, label: &str| {
            let skip = lines.len().saturating_sub(n);
            lines[skip..]
                .iter()
                .map(|l| format!("  [{} {label}] {l}\n", self.name))
                .collect::<String>()
        };
        tail(self.stdout(), "out") + &tail(self.stderr(), "err")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- last output of {} ---\n{}", self.name, self.dump(40));
        }
    }
}

fn collect(
    pipe: impl Read + Send + 'static,
    into: &Arc<Mutex<Vec<String>>>,
    open: &Arc<AtomicUsize>,
) {
    let (into, open) = (into.clone(), open.clone());
    std::thread::spawn(move || {
        // Bounded by the pipe: it ends when the process does.
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut lines = into.lock().unwrap();
            if lines.len() < MAX_LINES {
                lines.push(line);
            }
        }
        open.fetch_sub(1, Ordering::SeqCst);
    });
}

/// `/usr/bin/python3` when it can import `libtorrent`; `None` (skipped) otherwise.
pub fn python_with_libtorrent() -> Option<PathBuf> {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let python = PathBuf::from("/usr/bin/python3");
    let found = *FOUND.get_or_init(|| {
        Command::new(&python)
            .args(["-c", "import libtorrent"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !found {
        assert!(
            !tools_required(),
            "/usr/bin/python3 cannot import libtorrent (python3-libtorrent) but PIXTORRENT_REQUIRE_TOOLS=1"
        );
        eprintln!(
            "SKIPPED: /usr/bin/python3 cannot import libtorrent (install python3-libtorrent)"
        );
        return None;
    }
    Some(python)
}

/// `tests/peers/NAME`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

/// A TCP port nothing listens on right now at `ip`.
pub fn free_port_on(ip: IpAddr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The port in a `READY port=N` line.
fn ready_port(proc: &mut Proc, what: &str) -> u16 {
    let line = proc.wait_line(READY_TIMEOUT, |l| {
        l.starts_with("READY ") || l.starts_with("ERROR ")
    });
    match line.as_deref().and_then(|l| l.strip_prefix("READY port=")) {
        Some(port) => port.trim().parse().unwrap(),
        None => panic!("{what} did not become ready: {line:?}\n{}", proc.dump(30)),
    }
}

/// What an [`LtPeer`] does.
#[derive(Clone, Debug)]
pub struct LtOptions {
    /// Seed from `dir` (true) or leech into it.
    pub seed: bool,
    /// The address to listen on (and to make outgoing connections from).
    pub ip: IpAddr,
    /// Upload limit in bytes per second; 0 for none.
    pub upload_limit: u64,
    /// Download limit in bytes per second; 0 for none.
    pub download_limit: u64,
    /// Peers to dial besides those from the tracker.
    pub connect: Vec<SocketAddr>,
    /// Wait for a tracker reply before `READY`.
    pub wait_tracker: bool,
    /// Leech: exit once complete.
    pub exit_when_done: bool,
    /// Leech from this magnet link instead of the torrent file (metadata from peers, BEP 9).
    pub magnet: Option<String>,
    /// MSE/PE policy both ways: `enabled` (libtorrent's default), `forced` (RC4 only) or
    /// `disabled`.
    pub encryption: &'static str,
    /// BitTorrent over TCP, incoming and outgoing (default true; false: `--no-tcp`).
    pub tcp: bool,
    /// BitTorrent over uTP, incoming and outgoing (default false, as the script always had it).
    pub utp: bool,
    /// Print a `PEERLOG` line for each message received from a peer (libtorrent's peer log); read
    /// them with [`LtPeer::peer_log`].
    pub peer_log: bool,
    /// libtorrent's `unchoke_slots_limit` (its default: 8). Few slots leave leechers choked for long:
    /// in 20 s runs, a seeder with 1 slot unchoked one of two leechers for 5 s and then neither, one
    /// with 2 slots never unchoked the third of three.
    pub unchoke_slots: Option<u32>,
    /// libtorrent's `unchoke_interval`, seconds between rechokes (its default: 15).
    pub unchoke_interval: Option<u32>,
    /// With the peer log, an entry for each message sent to a peer too (`… ==> REJECT_PIECE [ piece:
    /// 85 | s: 16384 | l: 16384 ]`, decimal), in order with those received; implies `peer_log`.
    pub peer_log_sent: bool,
    /// Choke every peer once this many payload bytes are uploaded: `unchoke_slots_limit` is set to
    /// 0, and libtorrent 2.0.8 reruns its choker on that (the choke goes out within about a second)
    /// and rejects the requests a BEP 6 peer has queued. Prints `CHOKE t=S up=N`.
    pub choke_after_bytes: Option<u64>,
    /// With `choke_after_bytes`: unchoke again this long after the choke (`unchoke_slots_limit`
    /// restored). Prints `UNCHOKE t=S up=N`.
    pub unchoke_after: Option<Duration>,
    /// libtorrent's `min_announce_interval` (its default: 300 s, which would hide a tracker's short
    /// interval); prints an `ANNOUNCED t=S peers=N` line for each tracker reply.
    pub announce_secs: Option<u32>,
}

impl Default for LtOptions {
    fn default() -> LtOptions {
        LtOptions {
            seed: true,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            upload_limit: 0,
            download_limit: 0,
            connect: Vec::new(),
            wait_tracker: true,
            exit_when_done: false,
            magnet: None,
            encryption: "enabled",
            tcp: true,
            utp: false,
            peer_log: false,
            unchoke_slots: None,
            unchoke_interval: None,
            peer_log_sent: false,
            choke_after_bytes: None,
            unchoke_after: None,
            announce_secs: None,
        }
    }
}

/// A libtorrent peer (`tests/peers/lt_peer.py`), ready: listening, torrent checked, tracker answered.
pub struct LtPeer {
    /// The process; its stdout has `STATS`, `DONE`, `EXIT` lines.
    pub proc: Proc,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl LtPeer {
    /// A seeder of `torrent` from `save_dir` on 127.0.0.1, no rate limit.
    pub fn seed(torrent: &Path, save_dir: &Path) -> Option<LtPeer> {
        Self::start(torrent, save_dir, &LtOptions::default())
    }

    /// Starts a peer; `None` (skipped) without `/usr/bin/python3` and its libtorrent.
    pub fn start(torrent: &Path, dir: &Path, opts: &LtOptions) -> Option<LtPeer> {
        let python = python_with_libtorrent()?;
        let mut cmd = Command::new(python);
        cmd.arg(script("lt_peer.py"))
            .args(match &opts.magnet {
                Some(m) => ["--magnet".into(), m.clone()],
                None => ["--torrent".into(), torrent.display().to_string()],
            })
            .arg("--dir")
            .arg(dir)
            .arg(if opts.seed { "--seed" } else { "--leech" })
            .args(["--listen", &format!("{}:0", opts.ip)])
            .args(["--upload-limit", &opts.upload_limit.to_string()])
            .args(["--download-limit", &opts.download_limit.to_string()])
            .args(["--encryption", opts.encryption])
            .args(["--parent-pid", &std::process::id().to_string()])
            .arg("--stop-on-eof");
        for peer in &opts.connect {
            cmd.args(["--connect", &peer.to_string()]);
        }
        if !opts.wait_tracker {
            cmd.arg("--no-tracker-wait");
        }
        if opts.exit_when_done {
            cmd.arg("--exit-when-done");
        }
        cmd.arg(if opts.tcp { "--tcp" } else { "--no-tcp" })
            .arg(if opts.utp { "--utp" } else { "--no-utp" });
        if opts.peer_log {
            cmd.arg("--peer-log");
        }
        if let Some(n) = opts.unchoke_slots {
            cmd.args(["--unchoke-slots", &n.to_string()]);
        }
        if let Some(secs) = opts.unchoke_interval {
            cmd.args(["--unchoke-interval", &secs.to_string()]);
        }
        if opts.peer_log_sent {
            cmd.arg("--peer-log-sent");
        }
        if let Some(bytes) = opts.choke_after_bytes {
            cmd.args(["--choke-after-bytes", &bytes.to_string()]);
        }
        if let Some(after) = opts.unchoke_after {
            cmd.args(["--unchoke-after-secs", &after.as_secs_f64().to_string()]);
        }
        if let Some(secs) = opts.announce_secs {
            cmd.args(["--announce-secs", &secs.to_string()]);
        }
        let mut proc = Proc::spawn("libtorrent", cmd);
        proc.grace = Duration::from_secs(5);
        let port = ready_port(&mut proc, "libtorrent peer");
        Some(LtPeer {
            proc,
            addr: SocketAddr::new(opts.ip, port),
        })
    }

    /// Waits for its `DONE …` line (every piece verified); panics with its output if none comes
    /// within `limit`. Returns the line.
    pub fn wait_done(&mut self, limit: Duration) -> String {
        let done = self.proc.wait_line(limit, |l| l.starts_with("DONE "));
        done.unwrap_or_else(|| {
            panic!(
                "libtorrent leecher did not finish (exit status {:?})\n{}",
                self.proc.try_status(),
                self.proc.dump(20)
            )
        })
    }

    /// The peer log so far ([`LtOptions::peer_log`]): one entry per message received (and, with
    /// [`LtOptions::peer_log_sent`], sent, in order), the `PEERLOG ` prefix taken off, in libtorrent
    /// 2.0.8's words: `127.0.0.1:41234 <== HAVE_ALL [  ]`, `… <== ALLOWED_FAST [ 17 ]`, `… <==
    /// SUGGEST_PIECE [ piece: 3 ]`, `… <== HAVE [ piece: 17 ]`, `… <== REJECT_PIECE [ piece: 21 s:
    /// 3c000 l: 4000 ]` (offset and length in hex); sent, `… ==> CHOKE [  ]`, `… ==> REJECT_PIECE [
    /// piece: 85 | s: 16384 | l: 16384 ]` (decimal). The address is the peer's as libtorrent sees it.
    pub fn peer_log(&self) -> Vec<String> {
        let lines = self.proc.stdout();
        let entries = lines.iter().filter_map(|l| l.strip_prefix("PEERLOG "));
        entries.map(str::to_string).collect()
    }

    /// Waits up to `limit` for a received message whose peer log entry (as [`LtPeer::peer_log`]
    /// gives it) `pred` accepts; returns the entry, `None` when the time is up or the peer exited.
    pub fn wait_peer_log(
        &mut self,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let entry = |l: &str| l.strip_prefix("PEERLOG ").is_some_and(&pred);
        let line = self.proc.wait_line(limit, entry);
        line.map(|l| l["PEERLOG ".len()..].to_string())
    }

    /// Lifts the upload and download limits.
    pub fn unlimit(&mut self) {
        self.proc.send_line("unlimit");
    }

    /// The `up=` and `down=` payload byte counts of the latest `STATS` or `EXIT` line.
    pub fn transferred(&self) -> (u64, u64) {
        let lines = self.proc.stdout();
        let last = lines
            .iter()
            .rev()
            .find(|l| l.starts_with("STATS ") || l.starts_with("EXIT "));
        let field = |key: &str| {
            last.and_then(|l| l.split(' ').find_map(|w| w.strip_prefix(key)))
                .map_or(0, |v| v.parse().unwrap())
        };
        (field("up="), field("down="))
    }

    /// Stops it cleanly (so the final `EXIT` line is printed); returns the exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.proc.stop()
    }
}

/// The corrupting seeder (`tests/peers/bad_seeder.py`) on 127.0.0.1, announced to the torrent's tracker.
pub struct BadSeeder {
    /// Its stdout has `CONNECT`, `PIECE`, `CLOSE` lines.
    pub proc: Proc,
    /// Where it listens (the address the tracker hands out).
    pub addr: SocketAddr,
}

impl BadSeeder {
    /// Serves `torrent` from `save_dir` with every `corrupt_every`th piece (index % n == 0) wrong.
    pub fn start(torrent: &Path, save_dir: &Path, corrupt_every: u32) -> Option<BadSeeder> {
        let python = tool("python3")?;
        let mut cmd = Command::new(python);
        cmd.arg(script("bad_seeder.py"))
            .arg("--torrent")
            .arg(torrent)
            .arg("--dir")
            .arg(save_dir)
            .args(["--corrupt-every", &corrupt_every.to_string()])
            .args(["--parent-pid", &std::process::id().to_string()]);
        let mut proc = Proc::spawn("bad_seeder", cmd);
        let port = ready_port(&mut proc, "bad seeder");
        Some(BadSeeder {
            proc,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    /// How many handshakes it has received so far from peers whose peer id starts with `prefix`.
    pub fn handshakes_from(&self, prefix: &str) -> usize {
        let lines = self.proc.stdout();
        let id = format!(" id={prefix}");
        let from = |l: &&String| l.starts_with("HANDSHAKE ") && l.contains(&id);
        lines.iter().filter(from).count()
    }
}

/// aria2c seeding a torrent from a data directory, bound to one address, after a full hash check.
pub struct Aria2Seeder {
    /// The aria2c process.
    pub proc: Proc,
    /// Where it listens (the address the tracker hands out when it announces from the same IP).
    pub addr: SocketAddr,
}

impl Aria2Seeder {
    /// Starts seeding `torrent` from `save_dir` on `ip`, uploading at most `upload_limit` bytes/s (0:
    /// no limit). Returns once it has started; wait for the tracker with [`super::wait_for_seeders`].
    pub fn start(
        torrent: &Path,
        save_dir: &Path,
        ip: Ipv4Addr,
        upload_limit: u64,
    ) -> Option<Aria2Seeder> {
        let aria2 = tool("aria2c")?;
        let port = free_port_on(IpAddr::V4(ip));
        let mut cmd = Command::new(aria2);
        cmd.arg("--no-conf")
            .arg(format!("--dir={}", save_dir.display()))
            .arg(format!("--interface={ip}"))
            .arg(format!("--listen-port={port}"))
            .arg(format!("--max-upload-limit={upload_limit}"))
            .arg(format!("--stop-with-process={}", std::process::id()))
            .args([
                "--check-integrity=true",
                "--bt-hash-check-seed=true",
                "--seed-ratio=0.0",
                "--enable-dht=false",
                "--enable-dht6=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--disable-ipv6=true",
                "--file-allocation=none",
                "--bt-max-peers=50",
                "--summary-interval=0",
                "--console-log-level=notice",
                "--auto-save-interval=0",
                "--bt-save-metadata=false",
                "--rpc-save-upload-metadata=false",
            ])
            .arg(torrent);
        let proc = Proc::spawn("aria2c", cmd);
        Some(Aria2Seeder {
            proc,
            addr: SocketAddr::new(IpAddr::V4(ip), port),
        })
    }
}

/// Transmission's peer port inside its namespace (the namespace is the test's own: no clash).
const TRANSMISSION_PEER_PORT: u16 = 51413;
/// Transmission's RPC port inside its namespace.
const TRANSMISSION_RPC_PORT: u16 = 9091;

/// How a [`Transmission`] daemon is set up; the default is what [`Transmission::seed`] with no limit
/// and [`Transmission::leech`] use.
#[derive(Clone, Debug, Default)]
pub struct TransmissionOptions {
    /// Upload limit in kB/s; 0 for none.
    pub upload_limit_kb: u64,
    /// settings.json `encryption`, both ways: 0 prefers plaintext but accepts MSE/PE (the default),
    /// 1 prefers MSE/PE, 2 requires it (plaintext peers refused).
    pub encryption: u8,
}

/// transmission-daemon 3.00 inside a [`NetNs`] (it ignores peers on 127.0.0.0/8), RPC reachable from
/// the host at the namespace address; made a seeder by [`Transmission::seed`] or a leecher by
/// [`Transmission::leech`].
pub struct Transmission {
    /// The daemon (the pid `ip netns exec` became).
    pub proc: Proc,
    /// Where it listens for peers: the namespace address.
    pub addr: SocketAddr,
    rpc: String,
    remote: PathBuf,
    hash: InfoHash,
    _config: tempfile::TempDir,
}

impl Transmission {
    /// Starts the daemon in `ns`, adds `torrent` (data in `save_dir`), verifies it, starts seeding with
    /// at most `upload_limit_kb` kB/s (0: no limit). The torrent's tracker must be reachable from `ns`.
    pub fn seed(
        ns: &NetNs,
        torrent: &Path,
        hash: InfoHash,
        save_dir: &Path,
        upload_limit_kb: u64,
    ) -> Option<Transmission> {
        let opts = TransmissionOptions {
            upload_limit_kb,
            ..TransmissionOptions::default()
        };
        Self::seed_with(ns, torrent, hash, save_dir, &opts)
    }

    /// [`Transmission::seed`] with `opts` (upload limit, encryption).
    pub fn seed_with(
        ns: &NetNs,
        torrent: &Path,
        hash: InfoHash,
        save_dir: &Path,
        opts: &TransmissionOptions,
    ) -> Option<Transmission> {
        let seeder = Self::daemon(ns, torrent, hash, save_dir, opts, "transmission")?;
        seeder.remote(&["-t", &hash.to_hex(), "--verify"]);
        let start = Instant::now();
        loop {
            let info = seeder.info();
            if info.contains("Percent Done: 100%") && !info.contains("Verif") {
                break;
            }
            assert!(
                start.elapsed() < READY_TIMEOUT,
                "Transmission did not verify the data in {READY_TIMEOUT:?}:\n{info}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        seeder.remote(&["-t", &hash.to_hex(), "--start"]);
        Some(seeder)
    }

    /// Starts the daemon in `ns`, adds `torrent` (whose tracker must be reachable from `ns`) to download
    /// into `download_dir`, and starts it.
    pub fn leech(
        ns: &NetNs,
        torrent: &Path,
        hash: InfoHash,
        download_dir: &Path,
    ) -> Option<Transmission> {
        Self::leech_with(
            ns,
            torrent,
            hash,
            download_dir,
            &TransmissionOptions::default(),
        )
    }

    /// [`Transmission::leech`] with `opts` (upload limit, encryption).
    pub fn leech_with(
        ns: &NetNs,
        torrent: &Path,
        hash: InfoHash,
        download_dir: &Path,
        opts: &TransmissionOptions,
    ) -> Option<Transmission> {
        let name = "transmission leecher";
        let leecher = Self::daemon(ns, torrent, hash, download_dir, opts, name)?;
        leecher.remote(&["-t", &hash.to_hex(), "--start"]);
        Some(leecher)
    }

    /// The daemon with `torrent` added (not started), its data in `dir`.
    fn daemon(
        ns: &NetNs,
        torrent: &Path,
        hash: InfoHash,
        dir: &Path,
        opts: &TransmissionOptions,
        name: &str,
    ) -> Option<Transmission> {
        let daemon = tool("transmission-daemon")?;
        let remote = tool("transmission-remote")?;
        let config = tempfile::tempdir().unwrap();
        let settings = format!(
            r#"{{
  "bind-address-ipv4": "{ns_ip}",
  "cache-size-mb": 4,
  "dht-enabled": false,
  "download-dir": "{save}",
  "download-queue-enabled": false,
  "encryption": {encryption},
  "idle-seeding-limit-enabled": false,
  "incomplete-dir-enabled": false,
  "lpd-enabled": false,
  "message-level": 2,
  "peer-limit-global": 200,
  "peer-limit-per-torrent": 50,
  "peer-port": {peer_port},
  "peer-port-random-on-start": false,
  "pex-enabled": false,
  "port-forwarding-enabled": false,
  "queue-stalled-enabled": false,
  "ratio-limit-enabled": false,
  "rename-partial-files": false,
  "rpc-authentication-required": false,
  "rpc-bind-address": "{ns_ip}",
  "rpc-enabled": true,
  "rpc-host-whitelist-enabled": false,
  "rpc-port": {rpc_port},
  "rpc-whitelist-enabled": false,
  "scrape-paused-torrents-enabled": false,
  "seed-queue-enabled": false,
  "speed-limit-up": {limit},
  "speed-limit-up-enabled": {limited},
  "start-added-torrents": false,
  "utp-enabled": false,
  "watch-dir-enabled": false
}}
"#,
            ns_ip = ns.ns_ip,
            save = dir.display(),
            peer_port = TRANSMISSION_PEER_PORT,
            rpc_port = TRANSMISSION_RPC_PORT,
            encryption = opts.encryption,
            limit = opts.upload_limit_kb,
            limited = opts.upload_limit_kb > 0,
        );
        std::fs::write(config.path().join("settings.json"), settings).unwrap();
        // With util-linux's setpriv, the daemon also dies with the test thread that started it, should
        // the test process be killed before the guard's drop.
        let setpriv = Path::new("/usr/bin/setpriv");
        let mut cmd = if setpriv.is_file() {
            let mut cmd = ns.command(setpriv);
            cmd.args(["--pdeathsig", "KILL"]).arg(&daemon);
            cmd
        } else {
            ns.command(&daemon)
        };
        cmd.arg("--foreground")
            .arg("--config-dir")
            .arg(config.path())
            .arg("--log-info");
        let proc = Proc::spawn(name, cmd);
        let rpc_addr = SocketAddr::new(IpAddr::V4(ns.ns_ip), TRANSMISSION_RPC_PORT);
        wait_for_tcp(rpc_addr, Duration::from_secs(20));
        let t = Transmission {
            proc,
            addr: SocketAddr::new(IpAddr::V4(ns.ns_ip), TRANSMISSION_PEER_PORT),
            rpc: rpc_addr.to_string(),
            remote,
            hash,
            _config: config,
        };
        t.remote(&["--add", &torrent.display().to_string()]);
        Some(t)
    }

    /// Runs `transmission-remote RPC ARGS` (bounded); panics unless it succeeds; returns its stdout.
    pub fn remote(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(&self.remote);
        cmd.arg(&self.rpc).args(args);
        let mut proc = Proc::spawn("transmission-remote", cmd);
        let status = proc.wait_exit(Duration::from_secs(20));
        let out = proc.stdout().join("\n");
        assert!(
            status.is_some_and(|s| s.success()),
            "transmission-remote {args:?}: {status:?}\n{}",
            proc.dump(20)
        );
        out
    }

    /// `transmission-remote --info` for the torrent.
    pub fn info(&self) -> String {
        self.remote(&["-t", &self.hash.to_hex(), "--info"])
    }

    /// Polls (every 500 ms, up to `limit`) until the torrent is 100% done; returns the last `--info`.
    pub fn wait_done(&self, limit: Duration) -> Result<String, String> {
        let start = Instant::now();
        loop {
            let info = self.info();
            if info.contains("Percent Done: 100%") {
                return Ok(info);
            }
            if start.elapsed() > limit {
                return Err(info);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// An aria2c leecher of `torrent` into `out`, on 127.0.0.1, with `extra` options; exits when complete.
pub fn aria2_leecher(torrent: &Path, out: &Path, extra: &[&str]) -> Option<Proc> {
    let aria2 = tool("aria2c")?;
    let mut cmd = Command::new(aria2);
    cmd.arg("--no-conf")
        .arg(format!("--dir={}", out.display()))
        .arg("--interface=127.0.0.1")
        .arg(format!(
            "--listen-port={}",
            free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
        ))
        .arg(format!("--stop-with-process={}", std::process::id()))
        .args(ARIA2_QUIET)
        .args(extra)
        .arg(torrent);
    Some(Proc::spawn("aria2c leecher", cmd))
}
