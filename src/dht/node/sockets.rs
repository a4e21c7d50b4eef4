//! The DHT node's sockets: IPv4 and, where the host has it, IPv6 (BEP 32), on one port number,
//! shared with uTP through [`crate::udp::UdpPort`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;

use crate::dht::krpc::Want;
use crate::udp::UdpPort;

/// The node's sockets: IPv4 and, where the host has it, IPv6 (BEP 32), on the same port number.
pub(super) struct Sockets {
    pub(super) v4: Option<Arc<UdpSocket>>,
    pub(super) v6: Option<Arc<UdpSocket>>,
}

impl Sockets {
    /// The sockets of `port`.
    pub(super) fn of_port(port: &UdpPort) -> Sockets {
        Sockets {
            v4: port.socket(false).cloned(),
            v6: port.socket(true).cloned(),
        }
    }

    pub(super) fn of(&self, addr: &SocketAddr) -> Option<&UdpSocket> {
        if addr.is_ipv6() {
            self.v6.as_deref()
        } else {
            self.v4.as_deref()
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
