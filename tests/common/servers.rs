//! Servers of the tracker tests: a real `redis-server` on a random loopback port (no persistence),
//! and `pixtorrent-tracker` processes. Each is killed by pid and reaped on drop; waits are bounded.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_tcp_port, tool};

fn wait_port(addr: SocketAddr, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// `redis-server --port P --save "" --appendonly no` on 127.0.0.1.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
}

impl Redis {
    /// Starts one; `None` (skipped) when redis-server is not installed.
    pub fn start() -> Option<Redis> {
        tool("redis-server")?;
        let mut r = Redis {
            child: None,
            port: free_tcp_port(),
        };
        r.restart();
        Some(r)
    }

    /// The URL to give a client.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops the server (its data is gone: nothing is persisted).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        assert!(
            wait_port(addr, Duration::from_secs(10)),
            "redis-server did not start on {addr}"
        );
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `pixtorrent-tracker` process on 127.0.0.1 (random ports).
pub struct TrackerProc {
    child: Option<Child>,
    pub http: SocketAddr,
    pub udp: SocketAddr,
}

impl TrackerProc {
    /// Starts the binary with `extra` arguments; HTTP and UDP on one free port.
    pub fn start(bin: &Path, extra: &[&str]) -> TrackerProc {
        Self::start_env(bin, extra, &[])
    }

    /// As [`TrackerProc::start`], with `env` (`PIXTORRENT_TRACKER_*` settings) set for it.
    pub fn start_env(bin: &Path, extra: &[&str], env: &[(&str, &str)]) -> TrackerProc {
        let port = free_tcp_port();
        let http = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(bin)
            .args(["--listen", &http.to_string(), "--udp", &http.to_string()])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pixtorrent-tracker");
        let t = TrackerProc {
            child: Some(child),
            http,
            udp: http,
        };
        assert!(
            wait_port(http, Duration::from_secs(10)),
            "pixtorrent-tracker did not start on {http}"
        );
        t
    }

    /// `http://127.0.0.1:P/announce`.
    pub fn announce_url(&self) -> String {
        format!("http://{}/announce", self.http)
    }

    /// `udp://127.0.0.1:P/announce`.
    pub fn udp_url(&self) -> String {
        format!("udp://{}/announce", self.udp)
    }

    /// The process id (to read its `/proc` entries).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

impl Drop for TrackerProc {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
