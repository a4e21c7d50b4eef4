//! The DHT node's sockets: IPv4 and, where the host has it, IPv6 (BEP 32), on one port number.

use std::net::SocketAddr;

use tokio::net::UdpSocket;

use super::DhtConfig;
use crate::dht::krpc::Want;

/// The node's sockets: IPv4 and, where the host has it, IPv6 (BEP 32), on the same port number.
pub(super) struct Sockets {
    pub(super) v4: Option<UdpSocket>,
    pub(super) v6: Option<UdpSocket>,
}

impl Sockets {
    pub(super) fn of(&self, addr: &SocketAddr) -> Option<&UdpSocket> {
        if addr.is_ipv6() {
            self.v6.as_ref()
        } else {
            self.v4.as_ref()
        }
    }

    /// The `want` of our queries: the families we can use.
    pub(super) fn want(&self) -> Want {
        Want {
            v4: self.v4.is_some(),
            v6: self.v6.is_some(),
        }
    }
}

/// The sockets for `config`: IPv4 on the bound address (or all), and IPv6 where the host has it:
/// all IPv6 addresses when nothing is bound (an IPv6-only socket beside the IPv4 one), or the bound
/// IPv6 address alone. A host without IPv6 just has no IPv6 socket.
pub(super) async fn bind_sockets(config: &DhtConfig) -> std::io::Result<Sockets> {
    let net = &config.net;
    match net.ip {
        Some(std::net::IpAddr::V6(_)) => Ok(Sockets {
            v4: None,
            v6: Some(crate::net::udp_listen(net, config.port).await?),
        }),
        Some(std::net::IpAddr::V4(_)) => Ok(Sockets {
            v4: Some(crate::net::udp_listen(net, config.port).await?),
            v6: None,
        }),
        None => {
            let v4 = crate::net::udp_listen(net, config.port).await?;
            let port = v4.local_addr().map_or(config.port, |a| a.port());
            let v6 = crate::net::udp_listen_v6_only(net, port).ok();
            Ok(Sockets { v4: Some(v4), v6 })
        }
    }
}
