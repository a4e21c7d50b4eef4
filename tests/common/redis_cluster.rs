//! A real Redis Cluster on 127.0.0.1 for the tracker tests: 3 primaries and 3 replicas
//! (`redis-server --cluster-enabled yes` on free ports in a temp dir, joined by
//! `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`), with a 1 s node timeout so a
//! failover takes a few seconds. Every process is killed by pid and reaped on drop; waits are
//! bounded.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tool;

/// Six `redis-server` processes forming one cluster.
pub struct RedisCluster {
    nodes: Vec<(u16, Option<Child>)>,
    _dir: tempfile::TempDir,
}

/// A port that is free, and whose cluster bus port (port + 10000) is free too.
fn cluster_port() -> u16 {
    for _ in 0..200 {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair for a cluster node");
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl RedisCluster {
    /// Starts and joins the cluster; `None` (skipped) when redis-server is not installed.
    pub fn start() -> Option<RedisCluster> {
        tool("redis-server")?;
        tool("redis-cli")?;
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = cluster_port();
            let conf = dir.path().join(format!("nodes-{port}.conf"));
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                // Replicas sync at once (not after the default 5 s wait for more replicas).
                .args(["--repl-diskless-sync-delay", "0"])
                .arg("--cluster-config-file")
                .arg(&conf)
                .arg("--dir")
                .arg(dir.path())
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            nodes.push((port, Some(child)));
        }
        let c = RedisCluster { nodes, _dir: dir };
        for &(port, _) in &c.nodes {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let up = Instant::now();
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                assert!(up.elapsed() < Duration::from_secs(10), "node {addr} down");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let mut create = vec!["--cluster".to_string(), "create".to_string()];
        create.extend(c.nodes.iter().map(|(p, _)| format!("127.0.0.1:{p}")));
        create.extend(["--cluster-replicas", "1", "--cluster-yes"].map(String::from));
        let args: Vec<&str> = create.iter().map(String::as_str).collect();
        let out = cli(c.nodes[0].0, &args);
        assert!(out.contains("[OK] All 16384 slots covered"), "{out}");
        assert!(
            c.wait_ok(Duration::from_secs(20)),
            "cluster never became ok"
        );
        Some(c)
    }

    /// The URLs of every node (the tracker needs one; more is safer).
    pub fn urls(&self) -> Vec<String> {
        let ports = self.nodes.iter().map(|(p, _)| p);
        ports.map(|p| format!("redis://127.0.0.1:{p}/")).collect()
    }

    /// Whether every live node reports `cluster_state:ok` and sees every other live node's
    /// role settled, within `limit`.
    pub fn wait_ok(&self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            let live = self.nodes.iter().filter(|(_, c)| c.is_some());
            let ok = live
                .map(|(p, _)| cli(*p, &["cluster", "info"]))
                .all(|i| i.contains("cluster_state:ok") && i.contains("cluster_slots_ok:16384"));
            if ok {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Whether every replica's link to its primary is up (so it may take over), within `limit`.
    pub fn wait_synced(&self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            let infos: Vec<String> = self
                .nodes
                .iter()
                .map(|(p, _)| cli(*p, &["info", "replication"]))
                .collect();
            let replicas = infos.iter().filter(|i| i.contains("role:slave"));
            let up = replicas.clone().count() == 3
                && replicas
                    .clone()
                    .all(|i| i.contains("master_link_status:up"));
            if up {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The port of the primary serving `key`'s slot.
    pub fn primary_of(&self, key: &str) -> u16 {
        let slot: u16 = cli(self.nodes[0].0, &["cluster", "keyslot", key])
            .trim()
            .parse()
            .expect("a slot");
        self.primary_of_slot(slot)
    }

    /// The port of the primary serving `slot`, as a live node sees it.
    pub fn primary_of_slot(&self, slot: u16) -> u16 {
        let asker = self.nodes.iter().find(|(_, c)| c.is_some()).unwrap().0;
        let nodes = cli(asker, &["cluster", "nodes"]);
        for line in nodes.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            for range in &f[8..] {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) else {
                    continue;
                };
                if (lo..=hi).contains(&slot) {
                    let port = f[1].split(['@', ':']).nth(1).unwrap();
                    return port.parse().unwrap();
                }
            }
        }
        panic!("no primary serves slot {slot}: {nodes}");
    }

    /// `kill -9` of the node on `port`.
    pub fn kill_node(&mut self, port: u16) {
        for (p, child) in &mut self.nodes {
            if *p == port {
                if let Some(mut c) = child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        let ports: Vec<u16> = self.nodes.iter().map(|(p, _)| *p).collect();
        for p in ports {
            self.kill_node(p);
        }
    }
}
