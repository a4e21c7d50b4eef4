//! Black-hole peers (`tests/peers/blackhole.py`): listeners on 127.0.0.1 that handshake, announce a
//! full bitfield, unchoke, read every request and never send a block, each announced to a tracker as
//! a seed. A guard that stops the script by pid when dropped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use pixtorrent::types::InfoHash;

use super::seeders::{script, Proc};
use super::tool;

/// How long the script may take to listen and announce every port.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What one black hole saw over its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoleReport {
    /// Its listening port.
    pub port: u16,
    /// Connections accepted.
    pub connections: u64,
    /// `request` messages read (none answered).
    pub requests: u64,
}

/// `count` black-hole peers of one torrent.
pub struct BlackHoles {
    /// The script; its stdout has `CONNECT`, `HANDSHAKE`, `CLOSE`, then `PORT` and `EXIT` lines.
    pub proc: Proc,
    /// Where they listen (each one announced to the tracker).
    pub addrs: Vec<SocketAddr>,
}

impl BlackHoles {
    /// Starts `count` black holes for `info_hash` (a torrent of `pieces` pieces) on 127.0.0.1 and
    /// announces each to the HTTP tracker `announce` as a seed; returns once all are announced.
    /// `None` (skipped) without python3.
    pub fn start(
        info_hash: InfoHash,
        pieces: u64,
        count: usize,
        announce: &str,
    ) -> Option<BlackHoles> {
        let python = tool("python3")?;
        let mut cmd = Command::new(python);
        cmd.arg(script("blackhole.py"))
            .args(["--info-hash", &info_hash.to_hex()])
            .args(["--pieces", &pieces.to_string()])
            .args(["--count", &count.to_string()])
            .args(["--announce", announce])
            .args(["--max-secs", "600"])
            .args(["--parent-pid", &std::process::id().to_string()])
            .arg("--stop-on-eof");
        let mut proc = Proc::spawn("black holes", cmd);
        proc.grace = Duration::from_secs(5);
        let line = proc.wait_line(READY_TIMEOUT, |l| {
            l.starts_with("READY ") || l.starts_with("ERROR ")
        });
        let ports = match line.as_deref().and_then(|l| l.strip_prefix("READY ports=")) {
            Some(ports) => ports.split(',').map(|p| p.trim().parse::<u16>().unwrap()),
            None => panic!("black holes did not get ready: {line:?}\n{}", proc.dump(20)),
        };
        let addrs = ports
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .collect();
        Some(BlackHoles { proc, addrs })
    }

    /// Connections that completed a handshake so far.
    pub fn handshakes(&self) -> usize {
        let lines = self.proc.stdout();
        lines
            .iter()
            .filter(|l| l.starts_with("HANDSHAKE ") && l.ends_with(" ok=1"))
            .count()
    }

    /// Stops the script (end of stdin: it announces `stopped`) and returns each port's report.
    pub fn stop(&mut self) -> Vec<HoleReport> {
        self.proc.stop();
        let field = |line: &str, key: &str| -> u64 {
            line.split(' ')
                .find_map(|w| w.strip_prefix(key))
                .map_or(0, |v| v.parse().unwrap())
        };
        self.proc
            .stdout()
            .iter()
            .filter(|l| l.starts_with("PORT "))
            .map(|l| HoleReport {
                port: field(l, "port=") as u16,
                connections: field(l, "connections="),
                requests: field(l, "requests="),
            })
            .collect()
    }
}
