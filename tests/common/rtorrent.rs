//! rtorrent 0.9.8 (libtorrent-rakshasa 0.13.8, Debian's `rtorrent`) as a leecher: run as a daemon
//! (no terminal) from an rc file of the test's own, with a completion hook that leaves a marker file.
//! A guard that stops it by pid (SIGTERM, then SIGKILL) when dropped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use super::seeders::{free_port_on, Proc};
use super::tool;

/// How long rtorrent gets to exit after SIGTERM (it announces `stopped` first).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running rtorrent leeching one torrent into a directory.
pub struct Rtorrent {
    /// The rtorrent process (its own output is empty in daemon mode: see [`Rtorrent::log`]).
    pub proc: Proc,
    /// Where it listens for peers.
    pub addr: SocketAddr,
    /// Holds the rc file, the session directory, the log and the completion marker.
    dir: tempfile::TempDir,
    started: Instant,
}

impl Rtorrent {
    /// Starts rtorrent on `ip` (a free port there; outgoing connections from `ip` too), with DHT and
    /// PEX off, leeching `torrent` (from its trackers) into `download_dir`. `None` (skipped) when
    /// rtorrent is not installed.
    pub fn leech(torrent: &Path, download_dir: &Path, ip: Ipv4Addr) -> Option<Rtorrent> {
        let bin = tool("rtorrent")?;
        let dir = tempfile::tempdir().unwrap();
        let session = dir.path().join("session");
        std::fs::create_dir_all(&session).unwrap();
        std::fs::create_dir_all(download_dir).unwrap();
        let port = free_port_on(IpAddr::V4(ip));
        let rc = dir.path().join("rtorrent.rc");
        std::fs::write(
            &rc,
            rc_file(&session, download_dir, ip, port, dir.path(), torrent),
        )
        .unwrap();
        // With util-linux's setpriv, rtorrent also dies with the test thread that started it, should
        // the test process be killed before the guard's drop.
        let setpriv = Path::new("/usr/bin/setpriv");
        let mut cmd = if setpriv.is_file() {
            let mut cmd = Command::new(setpriv);
            cmd.args(["--pdeathsig", "KILL"]).arg(&bin);
            cmd
        } else {
            Command::new(&bin)
        };
        // -n: no ~/.rtorrent.rc; the rc file sets everything (daemon mode: no terminal needed).
        cmd.arg("-n")
            .arg("-o")
            .arg(format!("import={}", rc.display()));
        let proc = Proc::spawn("rtorrent", cmd);
        Some(Rtorrent {
            proc,
            addr: SocketAddr::new(IpAddr::V4(ip), port),
            dir,
            started: Instant::now(),
        })
    }

    fn marker(&self) -> PathBuf {
        self.dir.path().join("done")
    }

    /// Whether its `event.download.finished` hook has run (every piece downloaded and checked).
    pub fn is_done(&self) -> bool {
        self.marker().exists()
    }

    /// Polls (every 100 ms, up to `limit`) until the download is finished; `Ok` with the time since
    /// start, `Err` with why not (exit status, the end of its log).
    pub fn wait_done(&mut self, limit: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            if self.is_done() {
                return Ok(self.started.elapsed());
            }
            if let Some(status) = self.proc.try_status() {
                return Err(format!("rtorrent exited ({status})\n{}", self.log(30)));
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "not finished after {limit:?}\nrtorrent log:\n{}",
                    self.log(30)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last `n` lines of its log file (and of its stdout/stderr, should it print anything).
    pub fn log(&self, n: usize) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("rtorrent.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| format!("  [rtorrent log] {l}\n"))
            .collect::<String>();
        tail + &self.proc.dump(n)
    }

    /// Stops it: SIGTERM by pid (it announces `stopped` and closes its files), SIGKILL after a few
    /// seconds. Returns the exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if self.proc.try_status().is_none() {
            let pid = self.proc.pid().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            if self.proc.wait_exit(STOP_GRACE).is_none() {
                self.proc.kill();
            }
        }
        self.proc.try_status()
    }
}

impl Drop for Rtorrent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The rc file: daemon mode, its own session directory, one port on `ip`, no DHT, PEX, UDP trackers
/// or encryption, a log of tracker and peer events, the completion hook, and the torrent started.
fn rc_file(
    session: &Path,
    download: &Path,
    ip: Ipv4Addr,
    port: u16,
    dir: &Path,
    torrent: &Path,
) -> String {
    let marker = dir.join("done");
    let log = dir.join("rtorrent.log");
    format!(
        "system.daemon.set = true
session.path.set = {session}
directory.default.set = {download}
network.port_range.set = {port}-{port}
network.port_random.set = no
network.bind_address.set = {ip}
network.local_address.set = {ip}
dht.mode.set = disable
protocol.pex.set = no
trackers.use_udp.set = no
protocol.encryption.set = none
log.open_file = main, {log}
log.add_output = info, main
log.add_output = tracker_info, main
log.add_output = peer_list_events, main
log.add_output = connection_info, main
log.add_output = protocol_network_errors, main
method.set_key = event.download.finished, pixtorrent_test_done, \"execute.nothrow = touch, {marker}\"
load.start = {torrent}
",
        session = session.display(),
        download = download.display(),
        log = log.display(),
        marker = marker.display(),
        torrent = torrent.display(),
    )
}
