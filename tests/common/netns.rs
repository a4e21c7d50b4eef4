//! A network namespace of the test's own, joined to the host by a veth pair with a /29 of its own: for
//! peers that refuse loopback addresses (Transmission); optionally a /27 of peer addresses inside it,
//! routed from the host (a swarm, one address per peer). Deleted, veth and all, when dropped.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{tool, tools_required};

/// Namespaces made by this process so far: with the pid, a unique name and subnet per test.
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A namespace `pxt<pid>_<n>` with `lo` up and a veth pair: `host_ip/29` and `host_ip2/29` on the host
/// side, `ns_ip/29` inside. Subnets are taken from 10.200.0.0/13, chosen from the pid and a counter.
///
/// Two host addresses, because Transmission 3.00 tells peers apart by IP address alone: a leecher that
/// shares its address with a seeder the tracker named is taken for that seeder and dropped
/// ("another seed tried to reconnect to us").
pub struct NetNs {
    /// The namespace's name, for `ip netns exec`.
    pub name: String,
    /// The host side's first address (a host interface: processes on the host may bind it).
    pub host_ip: Ipv4Addr,
    /// A second host-side address, for a second host program the namespace must tell apart.
    pub host_ip2: Ipv4Addr,
    /// The namespace side's address.
    pub ns_ip: Ipv4Addr,
    host_if: String,
    /// The namespace side's interface.
    pub ns_if: String,
    veth_made: bool,
    ip: PathBuf,
}

impl NetNs {
    /// Creates the namespace; `None` (skipped) when `ip` is missing or not permitted (not root).
    pub fn create() -> Option<NetNs> {
        let ip = tool("ip")?;
        let pid = std::process::id();
        let mut last_error = String::new();
        // Bounded: a few tries past names or subnets left over by another process.
        for _ in 0..8 {
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let index = ((pid & 0xfff) << 4) | (n & 0xf);
            let base = u32::from(Ipv4Addr::new(10, 200, 0, 0)) + index * 8;
            let (host_ip, ns_ip) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
            let host_ip2 = Ipv4Addr::from(base + 3);
            if address_in_use(&ip, base, 8) {
                continue;
            }
            let name = format!("pxt{pid}_{n}");
            if let Err(e) = run(&ip, &["netns", "add", &name]) {
                last_error = e;
                continue;
            }
            let mut ns = NetNs {
                name,
                host_ip,
                host_ip2,
                ns_ip,
                host_if: format!("pxh{pid}_{n}"),
                ns_if: format!("pxn{pid}_{n}"),
                veth_made: false,
                ip: ip.clone(),
            };
            match ns.wire_up() {
                Ok(()) => return Some(ns),
                Err(e) => last_error = e, // dropping `ns` removes what was made
            }
        }
        assert!(
            !tools_required(),
            "cannot create a network namespace (root needed): {last_error}"
        );
        eprintln!("SKIPPED: cannot create a network namespace (root needed): {last_error}");
        None
    }

    fn wire_up(&mut self) -> Result<(), String> {
        let (ip, name, host_if) = (self.ip.clone(), self.name.clone(), self.host_if.clone());
        let ns_if = self.ns_if.clone();
        let ns_if = ns_if.as_str();
        let ip = ip.as_path();
        let host = format!("{}/29", self.host_ip);
        let host2 = format!("{}/29", self.host_ip2);
        let inside = format!("{}/29", self.ns_ip);
        run(ip, &["-n", &name, "link", "set", "lo", "up"])?;
        run(
            ip,
            &[
                "link", "add", &host_if, "type", "veth", "peer", "name", ns_if, "netns", &name,
            ],
        )?;
        self.veth_made = true;
        run(ip, &["addr", "add", &host, "dev", &host_if])?;
        run(ip, &["addr", "add", &host2, "dev", &host_if])?;
        run(ip, &["link", "set", &host_if, "up"])?;
        run(ip, &["-n", &name, "addr", "add", &inside, "dev", ns_if])?;
        run(ip, &["-n", &name, "link", "set", ns_if, "up"])?;
        Ok(())
    }

    /// Adds a second address inside the namespace (the /29's fifth) and returns it: a multi-homed
    /// host, whose programs' default source address stays [`NetNs::ns_ip`].
    pub fn add_ns_address(&self) -> Ipv4Addr {
        let second = Ipv4Addr::from(u32::from(self.ns_ip) + 2);
        let cidr = format!("{second}/29");
        run(
            &self.ip,
            &["-n", &self.name, "addr", "add", &cidr, "dev", &self.ns_if],
        )
        .unwrap();
        second
    }

    /// Adds `count` addresses (1 to 30) inside the namespace, each a /32 on its interface, from a /27
    /// of their own in 10.211.0.0/16 (the /29s are in 10.200.0.0/13; the benchmarks use 10.77.0.0/16
    /// and 10.210.0.0/16), and routes that /27 from the host through [`NetNs::ns_ip`]: one address per
    /// peer of a swarm, each reachable from the host side. The route goes with the veth pair.
    pub fn add_peer_addresses(&self, count: u32) -> Result<Vec<Ipv4Addr>, String> {
        assert!((1..=30).contains(&count), "a /27 holds 30 peer addresses");
        let pid = std::process::id();
        let mut last_error = String::from("every /27 tried is in use");
        // Bounded: a few tries past subnets another process holds.
        for _ in 0..8 {
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let index = ((pid & 0x7f) << 4) | (n & 0xf);
            let base = u32::from(Ipv4Addr::new(10, 211, 0, 0)) + index * 32;
            if address_in_use(&self.ip, base, 32) || route_in_use(&self.ip, base) {
                continue;
            }
            let subnet = format!("{}/27", Ipv4Addr::from(base));
            let via = self.ns_ip.to_string();
            let routed = ["route", "add", &subnet, "via", &via, "dev", &self.host_if];
            if let Err(e) = run(&self.ip, &routed) {
                last_error = e;
                continue;
            }
            let addrs: Vec<Ipv4Addr> = (1..=count).map(|k| Ipv4Addr::from(base + k)).collect();
            for addr in &addrs {
                let cidr = format!("{addr}/32");
                let add = ["-n", &self.name, "addr", "add", &cidr, "dev", &self.ns_if];
                run(&self.ip, &add)?;
            }
            return Ok(addrs);
        }
        Err(last_error)
    }

    /// `ip netns exec NAME program`: a command that runs `program` inside the namespace. `ip` execs the
    /// program in its own process, so the child's pid is the program's.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(&self.ip);
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if self.veth_made {
            let _ = run(&self.ip, &["link", "del", &self.host_if]);
        }
        let _ = run(&self.ip, &["netns", "del", &self.name]);
    }
}

/// Whether any of the `len` addresses from `base` is already on a host interface.
fn address_in_use(ip: &Path, base: u32, len: u32) -> bool {
    let out = output(ip, &["-o", "-4", "addr", "show"]);
    (0..len).any(|k| out.contains(&format!(" {}/", Ipv4Addr::from(base + k))))
}

/// Whether the host already routes the /27 at `base` (another process's swarm addresses).
fn route_in_use(ip: &Path, base: u32) -> bool {
    let out = output(ip, &["-4", "route", "show"]);
    out.contains(&format!("{}/27", Ipv4Addr::from(base)))
}

/// `ip ARGS`'s stdout; empty if it cannot run.
fn output(ip: &Path, args: &[&str]) -> String {
    Command::new(ip)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Runs `ip ARGS`; `Err` carries its stderr. `ip` configuring links returns at once.
fn run(ip: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(ip)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
