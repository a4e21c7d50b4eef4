//! A peer connection over TCP or uTP, as one stream type: the peer wire, MSE and the engine run on
//! it without caring which.

use std::pin::Pin;
use std::task::{Context, Poll};

use librqbit_utp::UtpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::net::PeerStream;

/// TCP or uTP.
pub enum AnyStream {
    /// TCP.
    Tcp(TcpStream),
    /// uTP (BEP 29).
    Utp(UtpStream),
}

impl PeerStream for UtpStream {
    fn transport(&self) -> &'static str {
        "utp"
    }
}

impl PeerStream for AnyStream {
    fn ack_now(&self) {
        if let AnyStream::Tcp(s) = self {
            s.ack_now();
        }
    }

    fn transport(&self) -> &'static str {
        match self {
            AnyStream::Tcp(s) => s.transport(),
            AnyStream::Utp(s) => s.transport(),
        }
    }
}

impl AsyncRead for AnyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            AnyStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            AnyStream::Utp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for AnyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            AnyStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            AnyStream::Utp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            AnyStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            AnyStream::Utp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            AnyStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            AnyStream::Utp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
