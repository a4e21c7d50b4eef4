//! The UDP port shared by the DHT and uTP, numbered as the peer listener's `--port`: IPv4 and, where
//! the host has it, IPv6 (BEP 32). One receive loop per socket hands each datagram to its owner by
//! its first byte ([`crate::utp::packet::classify`]): KRPC (`d`) to the DHT, uTP to the uTP
//! sockets, anything else nowhere. Each owner reads a bounded queue; a datagram that finds its queue
//! full is dropped, as the network would (both protocols retransmit). Both owners send through the
//! shared sockets directly.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::net::Bind;
use crate::utp::packet::{classify, Datagram as Class};

/// One datagram and where it came from.
pub type Datagram = (Bytes, SocketAddr);
/// Datagrams queued for one owner before more are dropped.
pub const QUEUE: usize = 4096;
/// Longest datagram passed on: uTP packets fit the MTU and KRPC messages a few KB, so a queue holds
/// at most 32 MiB whatever a flood sends.
pub const MAX_DATAGRAM: usize = 8 * 1024;
/// Socket buffers asked of the kernel: uTP at full speed needs far more than the default ~200 KB.
const SOCKET_BUFFER: usize = 4 << 20;

/// The shared sockets (cheap to clone).
#[derive(Debug, Clone)]
pub struct UdpPort {
    v4: Option<Arc<UdpSocket>>,
    v6: Option<Arc<UdpSocket>>,
}

/// Where one socket's datagrams go.
#[derive(Debug, Default)]
pub struct Sinks {
    /// KRPC, to the DHT (`None`: dropped).
    pub krpc: Option<mpsc::Sender<Datagram>>,
    /// uTP (`None`: dropped).
    pub utp: Option<mpsc::Sender<Datagram>>,
}

impl UdpPort {
    /// Binds `port` on the bound address (or all): IPv4 on an IPv4 or no bound address, and IPv6
    /// beside it (an IPv6-only socket) where the host has it, or the bound IPv6 address alone.
    pub async fn bind(net: &Bind, port: u16) -> std::io::Result<UdpPort> {
        let port = match net.ip {
            Some(IpAddr::V6(_)) => UdpPort {
                v4: None,
                v6: Some(Arc::new(crate::net::udp_listen(net, port).await?)),
            },
            Some(IpAddr::V4(_)) => UdpPort {
                v4: Some(Arc::new(crate::net::udp_listen(net, port).await?)),
                v6: None,
            },
            None => {
                let v4 = crate::net::udp_listen(net, port).await?;
                let bound = v4.local_addr().map_or(port, |a| a.port());
                let v6 = crate::net::udp_listen_v6_only(net, bound).ok();
                UdpPort {
                    v4: Some(Arc::new(v4)),
                    v6: v6.map(Arc::new),
                }
            }
        };
        for s in [&port.v4, &port.v6].into_iter().flatten() {
            let sock = socket2::SockRef::from(s.as_ref());
            let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
            let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
        }
        Ok(port)
    }

    /// The IPv4 (`v6` false) or IPv6 socket, if bound.
    pub fn socket(&self, v6: bool) -> Option<&Arc<UdpSocket>> {
        if v6 {
            self.v6.as_ref()
        } else {
            self.v4.as_ref()
        }
    }

    /// The port number bound.
    pub fn port(&self) -> u16 {
        [&self.v4, &self.v6]
            .into_iter()
            .flatten()
            .find_map(|s| s.local_addr().ok())
            .map_or(0, |a| a.port())
    }

    /// Starts the receive loop of the IPv4 (`v6` false) or IPv6 socket, feeding `sinks`. It ends
    /// when every sink is gone.
    pub fn demux(&self, v6: bool, sinks: Sinks) {
        if let Some(socket) = self.socket(v6).cloned() {
            tokio::spawn(receive(socket, sinks));
        }
    }
}

async fn receive(socket: Arc<UdpSocket>, sinks: Sinks) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let closed = |s: &Option<mpsc::Sender<Datagram>>| s.as_ref().is_none_or(|s| s.is_closed());
        if closed(&sinks.krpc) && closed(&sinks.utp) {
            return;
        }
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            // ICMP errors surface here on Linux; nothing to do but go on.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if n > MAX_DATAGRAM {
            continue;
        }
        let sink = match classify(&buf[..n]) {
            Class::Krpc => &sinks.krpc,
            Class::Utp => &sinks.utp,
            Class::Junk => continue,
        };
        if let Some(tx) = sink {
            let _ = tx.try_send((Bytes::copy_from_slice(&buf[..n]), from));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn datagrams_go_to_their_owner_by_the_first_byte() {
        let net = Bind {
            ip: Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            ..Bind::default()
        };
        let port = UdpPort::bind(&net, 0).await.unwrap();
        let (ktx, mut krx) = mpsc::channel(8);
        let (utx, mut urx) = mpsc::channel(8);
        port.demux(
            false,
            Sinks {
                krpc: Some(ktx),
                utp: Some(utx),
            },
        );
        let to = SocketAddr::from(([127, 0, 0, 1], port.port()));
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut syn = Vec::new();
        crate::utp::packet::Header::new(crate::utp::packet::Kind::Syn, 1, 1, 0).encode(&mut syn);
        for d in [&b"junk"[..], b"d1:y1:qe", &syn] {
            peer.send_to(d, to).await.unwrap();
        }
        let wait = Duration::from_secs(5);
        let k = tokio::time::timeout(wait, krx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&k.0[..], b"d1:y1:qe");
        assert_eq!(k.1, peer.local_addr().unwrap());
        let u = tokio::time::timeout(wait, urx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&u.0[..], &syn[..]);
        assert!(
            krx.try_recv().is_err() && urx.try_recv().is_err(),
            "junk went nowhere"
        );
    }
}
