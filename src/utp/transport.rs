//! The `librqbit-utp` transport over the shared UDP port: datagrams come from the port's receive
//! loop through a bounded queue, and go out through the shared socket.

use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use librqbit_dualstack_sockets::PollSendToVectored;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::udp::Datagram;

/// One address family's uTP transport.
pub struct SharedTransport {
    socket: Arc<UdpSocket>,
    /// Only the crate's dispatcher task reads it; the lock is never contended.
    rx: Mutex<mpsc::Receiver<Datagram>>,
    local: SocketAddr,
}

impl SharedTransport {
    /// Sends through `socket`, receives what the port's loop queues on `rx`.
    pub fn new(socket: Arc<UdpSocket>, rx: mpsc::Receiver<Datagram>) -> std::io::Result<Self> {
        let local = socket.local_addr()?;
        Ok(SharedTransport {
            socket,
            rx: Mutex::new(rx),
            local,
        })
    }
}

impl PollSendToVectored for SharedTransport {
    fn poll_send_to_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
        target: SocketAddr,
    ) -> Poll<std::io::Result<usize>> {
        PollSendToVectored::poll_send_to_vectored(&*self.socket, cx, bufs, target)
    }
}

impl librqbit_utp::Transport for SharedTransport {
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = std::io::Result<(usize, SocketAddr)>> + Send + Sync + 'a {
        std::future::poll_fn(move |cx| {
            let mut rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
            match rx.poll_recv(cx) {
                Poll::Ready(Some((d, from))) => {
                    let n = d.len().min(buf.len());
                    buf[..n].copy_from_slice(&d[..n]);
                    Poll::Ready(Ok((n, from)))
                }
                // The port's loop is gone: the error ends the crate's dispatcher.
                Poll::Ready(None) => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
                Poll::Pending => Poll::Pending,
            }
        })
    }

    fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        target: SocketAddr,
    ) -> impl Future<Output = std::io::Result<usize>> + Send + Sync + 'a {
        self.socket.send_to(buf, target)
    }

    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<std::io::Result<usize>> {
        self.socket.poll_send_to(cx, buf, target)
    }

    fn bind_addr(&self) -> SocketAddr {
        self.local
    }
}
