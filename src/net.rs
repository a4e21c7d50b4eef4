//! Every socket pixtorrent opens, opened the way the user said: bound to `--bind`'s address and, with
//! `--interface`, to that device (`SO_BINDTODEVICE`), so no traffic leaves from another address or by
//! another route (a VPN user's guarantee). The listener, outgoing peer connections, UDP tracker
//! sockets and the HTTP client (announces, web seeds, a `.torrent` by URL) all come from here.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

/// Backlog of the peer listener: as many half-open connections as a busy swarm throws at us.
const LISTEN_BACKLOG: u32 = 1024;

/// Where our sockets come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bind {
    /// The local address every socket is bound to (`None`: the kernel chooses, per route).
    pub ip: Option<IpAddr>,
    /// The network interface every socket is tied to (`None`: any).
    pub device: Option<String>,
}

impl Bind {
    /// From `--bind` (an unspecified address means none) and `--interface`.
    pub fn new(ip: IpAddr, device: Option<String>) -> Bind {
        Bind {
            ip: (!ip.is_unspecified()).then_some(ip),
            device: device.filter(|d| !d.is_empty()),
        }
    }

    /// Whether a socket of ours may talk to `peer`: not when we are bound to an address of the
    /// other family (the kernel would pick a source of its own, a leak).
    pub fn reaches(&self, peer: IpAddr) -> bool {
        self.ip.is_none_or(|ip| ip.is_ipv4() == peer.is_ipv4())
    }

    /// The error for a peer [`Bind::reaches`] refuses.
    pub fn unreachable(&self, peer: IpAddr) -> io::Error {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!(
                "{peer} is not reachable from --bind {}: another address family",
                self.ip.map_or_else(String::new, |ip| ip.to_string())
            ),
        )
    }

    /// How the user sees these settings, for error messages: `10.0.0.2`, `10.0.0.2 on wg0`.
    pub fn describe(&self) -> String {
        match (&self.ip, &self.device) {
            (Some(ip), Some(d)) => format!("{ip} on {d}"),
            (Some(ip), None) => ip.to_string(),
            (None, Some(d)) => format!("interface {d}"),
            (None, None) => "any address".into(),
        }
    }

    fn device_bytes(&self) -> Option<&[u8]> {
        self.device.as_deref().map(str::as_bytes)
    }

    fn tcp_socket(&self, v4: bool) -> io::Result<TcpSocket> {
        let socket = if v4 {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(device) = self.device_bytes() {
            socket
                .bind_device(Some(device))
                .map_err(|e| device_error(e, self))?;
        }
        Ok(socket)
    }
}

fn device_error(e: io::Error, bind: &Bind) -> io::Error {
    let device = bind.device.as_deref().unwrap_or("");
    let why = match e.raw_os_error() {
        Some(libc::ENODEV) => "no such interface".to_string(),
        Some(libc::EPERM) => "not permitted (needs CAP_NET_RAW on this kernel)".to_string(),
        _ => e.to_string(),
    };
    io::Error::new(e.kind(), format!("cannot use interface {device}: {why}"))
}

/// The peer listener on `port` (0: any) of the bound address (all IPv4 addresses when none).
pub fn listen(bind: &Bind, port: u16) -> io::Result<TcpListener> {
    let ip = bind.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let socket = bind.tcp_socket(ip.is_ipv4())?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(ip, port))?;
    socket.listen(LISTEN_BACKLOG)
}

/// A TCP connection to `peer` from the bound address and device, tuned as [`tune`] says.
pub async fn connect(bind: &Bind, peer: SocketAddr) -> io::Result<TcpStream> {
    if !bind.reaches(peer.ip()) {
        return Err(bind.unreachable(peer.ip()));
    }
    let socket = bind.tcp_socket(peer.is_ipv4())?;
    if let Some(ip) = bind.ip {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(peer).await?;
    tune(&stream);
    Ok(stream)
}

/// A peer connection's TCP settings: `TCP_NODELAY`, since every message we write is whole and a
/// request held back by Nagle is a round trip lost.
pub fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
}

/// A byte stream a peer connection runs on: TCP today, uTP and encrypted streams later, an in-memory
/// duplex in tests. Transport tuning is a hook here, so the connection code never sees a socket.
pub trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Acknowledge what was just read at once, where the transport delays acknowledgements.
    fn ack_now(&self) {}

    /// How `-v` names the transport: `tcp`, `tcp+rc4` (MSE), `tcp+mse-plaintext`, ...
    fn transport(&self) -> &'static str {
        "memory"
    }
}

impl PeerStream for TcpStream {
    fn transport(&self) -> &'static str {
        "tcp"
    }

    /// Re-arms `TCP_QUICKACK` (Linux clears it by itself). A peer without `TCP_NODELAY`
    /// (libtorrent's default) holds its next requests until its last small message is acknowledged;
    /// with nothing of ours to piggyback on, a delayed ACK idled uploads to it for up to 40 ms at a
    /// time (measured: 0.59x libtorrent's seeding speed before, 1.34x after).
    fn ack_now(&self) {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int of the stated size.
        let _ = unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
}

impl PeerStream for tokio::io::DuplexStream {}

/// A UDP socket from the bound address and device, connected to `peer`.
pub async fn udp_connected(bind: &Bind, peer: SocketAddr) -> io::Result<UdpSocket> {
    if !bind.reaches(peer.ip()) {
        return Err(bind.unreachable(peer.ip()));
    }
    let local = match (bind.ip, peer) {
        (Some(ip), _) => SocketAddr::new(ip, 0),
        (None, SocketAddr::V4(_)) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        (None, SocketAddr::V6(_)) => {
            SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0)
        }
    };
    let socket = UdpSocket::bind(local).await?;
    if let Some(device) = bind.device_bytes() {
        socket
            .bind_device(Some(device))
            .map_err(|e| device_error(e, bind))?;
    }
    socket.connect(peer).await?;
    Ok(socket)
}

/// An unconnected UDP socket on `port` of the bound address (all IPv4 addresses when none), for the
/// DHT (and uTP later) on the same port number as the peer listener.
pub async fn udp_listen(bind: &Bind, port: u16) -> io::Result<UdpSocket> {
    let ip = bind.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let socket = UdpSocket::bind(SocketAddr::new(ip, port)).await?;
    if let Some(device) = bind.device_bytes() {
        socket
            .bind_device(Some(device))
            .map_err(|e| device_error(e, bind))?;
    }
    Ok(socket)
}

/// An IPv6-only UDP socket on `port` of all IPv6 addresses (`IPV6_V6ONLY`, so it sits beside an
/// IPv4 socket on the same port), for the DHT's IPv6 side (BEP 32). Fails on a host without IPv6.
pub fn udp_listen_v6_only(bind: &Bind, port: u16) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_only_v6(true)?;
    socket.set_nonblocking(true)?;
    if let Some(device) = bind.device_bytes() {
        socket
            .bind_device(Some(device))
            .map_err(|e| device_error(e, bind))?;
    }
    let addr = SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), port);
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Applies `bind` to an HTTP client: local address, device, and a resolver that keeps only the
/// addresses a bound socket can reach (hyper binds the local address only for a destination of
/// the same family, and would connect to another from the kernel's choice of source).
pub fn http(builder: reqwest::ClientBuilder, bind: &Bind) -> reqwest::ClientBuilder {
    let mut builder = builder.local_address(bind.ip);
    if let Some(device) = &bind.device {
        builder = builder.interface(device);
    }
    if bind.ip.is_some() {
        builder = builder.dns_resolver(Arc::new(FamilyResolver(bind.clone())));
    }
    builder
}

/// Whether `url` may be fetched under `bind`: a literal IP host of the other family is not (no
/// resolver sees it). Checked before a request and on every redirect.
pub fn check_url(bind: &Bind, url: &reqwest::Url) -> Result<(), String> {
    let host = url.host_str().unwrap_or("");
    let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        return Ok(());
    };
    if bind.reaches(ip) {
        Ok(())
    } else {
        Err(bind.unreachable(ip).to_string())
    }
}

/// The system resolver, keeping only the addresses of the bound family.
struct FamilyResolver(Bind);

impl reqwest::dns::Resolve for FamilyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let bind = self.0.clone();
        Box::pin(async move {
            let host = format!("{}:0", name.as_str());
            let found: Vec<SocketAddr> = tokio::net::lookup_host(host).await?.collect();
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| bind.reaches(a.ip()))
                .collect();
            if kept.is_empty() {
                let why = format!(
                    "{} has no address reachable from --bind {}",
                    name.as_str(),
                    bind.describe()
                );
                return Err(io::Error::new(io::ErrorKind::AddrNotAvailable, why).into());
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Raises this process's soft limit on open files to its hard limit, as libtorrent and Transmission
/// do: the usual soft limit of 1024 is too few for many torrents' files and peers (500 torrents of
/// 2-3 files each hold 1,249 files open). Returns the limit now in force (0 if unknown).
pub fn raise_open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid out-parameter and resource constant.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let now = super::raise_open_file_limit();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid out-parameter.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
        assert_eq!(now, lim.rlim_cur);
    }

    use super::*;

    #[test]
    fn an_unspecified_address_binds_nothing() {
        let b = Bind::new("0.0.0.0".parse().unwrap(), None);
        assert_eq!(b, Bind::default());
        assert!(b.reaches("::1".parse().unwrap()));
        let b = Bind::new("10.0.0.2".parse().unwrap(), Some(String::new()));
        assert_eq!(b.device, None);
        assert!(b.reaches("1.2.3.4".parse().unwrap()));
        assert!(!b.reaches("::1".parse().unwrap()));
        assert_eq!(b.describe(), "10.0.0.2");
    }

    #[test]
    fn literal_urls_of_the_other_family_are_refused() {
        let b = Bind::new("10.0.0.2".parse().unwrap(), None);
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(check_url(&b, &url("http://[::1]:80/announce")).is_err());
        assert!(check_url(&b, &url("http://127.0.0.1/announce")).is_ok());
        assert!(check_url(&b, &url("http://tracker.invalid/announce")).is_ok());
        assert!(check_url(&Bind::default(), &url("http://[::1]/")).is_ok());
    }

    #[tokio::test]
    async fn sockets_come_from_the_bound_address() {
        let lo = Bind::new("127.0.0.1".parse().unwrap(), None);
        let listener = listen(&lo, 0).unwrap();
        let at = listener.local_addr().unwrap();
        assert_eq!(at.ip(), lo.ip.unwrap());
        // 127.0.0.2 is on lo too: the connection's source is the bound address, not 127.0.0.1.
        let other = Bind::new("127.0.0.2".parse().unwrap(), None);
        let (out, accepted) = tokio::join!(connect(&other, at), listener.accept());
        assert_eq!(out.unwrap().local_addr().unwrap().ip(), other.ip.unwrap());
        assert_eq!(accepted.unwrap().1.ip(), other.ip.unwrap());
        let udp = udp_connected(&other, at).await.unwrap();
        assert_eq!(udp.local_addr().unwrap().ip(), other.ip.unwrap());
        let err = connect(&other, "[::1]:1".parse().unwrap())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("another address family"), "{err}");
        let nodev = Bind::new("127.0.0.1".parse().unwrap(), Some("nosuchif0".into()));
        let err = listen(&nodev, 0).unwrap_err();
        assert!(err.to_string().contains("interface nosuchif0"), "{err}");
    }
}
