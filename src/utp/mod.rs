//! uTP (BEP 29) on the shared UDP port: `librqbit-utp` sockets (its connection state machine,
//! selective ACK, retransmission, receive window; CUBIC congestion control, as it has no LEDBAT)
//! driven over [`crate::udp::UdpPort`] through [`transport::SharedTransport`], one per address
//! family. A uTP stream carries the same peer wire as TCP: [`either::AnyStream`] is either one.

pub mod either;
pub mod packet;
pub mod transport;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use librqbit_utp::{SocketOpts, UtpSocket, UtpSocketUdp, UtpStream};
use tokio::sync::mpsc;

use crate::udp::{Datagram, UdpPort, QUEUE};
use transport::SharedTransport;

/// The environment type `librqbit-utp` uses for its UDP sockets (it does not export the name).
trait EnvOf {
    type Env;
}
impl<T, E> EnvOf for UtpSocket<T, E> {
    type Env = E;
}
type Env = <UtpSocketUdp as EnvOf>::Env;
type Socket = Arc<UtpSocket<SharedTransport, Env>>;

/// Receive window per connection: 1 MiB, the crate's default, enough for 100 MB/s at 10 ms.
const RX_WINDOW: usize = 1 << 20;
/// uTP connections per address family at once (the crate's default is 128).
const MAX_CONNECTIONS: usize = 512;

/// The uTP sockets of one process (cheap to clone).
#[derive(Clone)]
pub struct Utp {
    v4: Option<Socket>,
    v6: Option<Socket>,
}

impl std::fmt::Debug for Utp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Utp")
            .field("v4", &self.v4.is_some())
            .field("v6", &self.v6.is_some())
            .finish()
    }
}

impl Utp {
    /// uTP sockets on `port`'s sockets; returns the senders its receive loops feed (IPv4, IPv6).
    pub fn start(port: &UdpPort) -> std::io::Result<(Utp, [Option<mpsc::Sender<Datagram>>; 2])> {
        let mut sinks = [None, None];
        let mut sockets = [None, None];
        for (k, v6) in [false, true].into_iter().enumerate() {
            let Some(udp) = port.socket(v6) else { continue };
            let (tx, rx) = mpsc::channel(QUEUE);
            let opts = SocketOpts {
                vsock_rx_bufsize_bytes: NonZeroUsize::new(RX_WINDOW),
                max_live_vsocks: NonZeroUsize::new(MAX_CONNECTIONS),
                ..SocketOpts::default()
            };
            let socket = UtpSocket::new_with_opts(
                SharedTransport::new(udp.clone(), rx)?,
                Env::default(),
                opts,
            )
            .map_err(|e| std::io::Error::other(e.to_string()))?;
            sockets[k] = Some(socket);
            sinks[k] = Some(tx);
        }
        let [v4, v6] = sockets;
        Ok((Utp { v4, v6 }, sinks))
    }

    /// Opens a uTP connection to `addr` within `timeout`: the SYN is sent again once halfway, as
    /// the crate sends it only once.
    pub async fn connect(&self, addr: SocketAddr, timeout: Duration) -> std::io::Result<UtpStream> {
        let socket = if addr.is_ipv6() { &self.v6 } else { &self.v4 };
        let Some(socket) = socket else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrNotAvailable,
                "no uTP socket for this address family",
            ));
        };
        let timed_out =
            || std::io::Error::new(std::io::ErrorKind::TimedOut, "uTP connect timed out");
        for _ in 0..2 {
            match tokio::time::timeout(timeout / 2, socket.connect(addr)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(e)) => return Err(std::io::Error::other(e.to_string())),
                Err(_) => continue,
            }
        }
        Err(timed_out())
    }

    /// The next incoming uTP connection on the IPv4 (`v6` false) or IPv6 socket; `None` when there
    /// is no such socket or it has stopped.
    pub async fn accept(&self, v6: bool) -> Option<UtpStream> {
        let socket = if v6 { &self.v6 } else { &self.v4 };
        socket.as_ref()?.accept().await.ok()
    }

    /// Whether a socket of this family exists.
    pub fn has(&self, v6: bool) -> bool {
        if v6 {
            self.v6.is_some()
        } else {
            self.v4.is_some()
        }
    }
}
