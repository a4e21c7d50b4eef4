//! A peer stream after an MSE handshake that chose RC4: reads are decrypted and writes encrypted
//! on the way through, so the peer-wire code runs on it unchanged (`net::PeerStream`). RC4 must
//! see every byte once and in order: a write encrypts one chunk, and that chunk's unwritten tail is
//! kept and sent before anything new is taken.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::crypto::Streams;
use crate::net::PeerStream;

/// Most plaintext encrypted per write.
const CHUNK: usize = 16 * 1024;

/// `inner` after an MSE handshake: RC4-encrypted both ways, or plaintext when that was chosen
/// (then only the bytes that came with the handshake are served first).
pub struct EncryptedStream<S> {
    inner: S,
    streams: Option<Streams>,
    /// Decrypted bytes that arrived with the handshake, served first.
    early: Vec<u8>,
    /// Encrypted bytes of an accepted write not yet written.
    pending: Vec<u8>,
    /// The plaintext came out of an MSE handshake (not a plain connection).
    negotiated: bool,
}

impl<S: PeerStream> EncryptedStream<S> {
    /// Wraps `inner` with the handshake's `streams`; `early` is the handshake's `rest` (already
    /// decrypted).
    pub fn new(inner: S, streams: Streams, early: Vec<u8>) -> EncryptedStream<S> {
        EncryptedStream {
            inner,
            streams: Some(streams),
            early,
            pending: Vec::new(),
            negotiated: true,
        }
    }

    /// `inner` unencrypted (plaintext chosen, or no MSE at all), `early` served first.
    pub fn plain(inner: S, early: Vec<u8>) -> EncryptedStream<S> {
        EncryptedStream {
            inner,
            streams: None,
            early,
            pending: Vec::new(),
            negotiated: false,
        }
    }

    /// Plaintext chosen by an MSE handshake (only the handshake was hidden).
    pub fn negotiated_plain(inner: S, early: Vec<u8>) -> EncryptedStream<S> {
        EncryptedStream {
            negotiated: true,
            ..EncryptedStream::plain(inner, early)
        }
    }

    /// Whether the bytes are RC4-encrypted.
    pub fn encrypted(&self) -> bool {
        self.streams.is_some()
    }

    /// Writes out the encrypted tail of the last accepted write.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = match Pin::new(&mut self.inner).poll_write(cx, &self.pending) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: PeerStream> AsyncRead for EncryptedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.early.is_empty() {
            let n = this.early.len().min(buf.remaining());
            buf.put_slice(&this.early[..n]);
            this.early.drain(..n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some(s) = this.streams.as_mut() {
                    s.receive.apply(&mut buf.filled_mut()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: PeerStream> AsyncWrite for EncryptedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        let Some(streams) = this.streams.as_mut() else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        // `pending` is empty here: its allocation is reused for every write.
        let take = buf.len().min(CHUNK);
        this.pending.extend_from_slice(&buf[..take]);
        streams.send.apply(&mut this.pending);
        // The chunk is ours now (encrypted, in order); push what the socket takes at once.
        let _ = this.poll_pending(cx);
        Poll::Ready(Ok(take))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

impl<S: PeerStream> PeerStream for EncryptedStream<S> {
    fn ack_now(&self) {
        self.inner.ack_now();
    }

    fn transport(&self) -> &'static str {
        match (
            self.streams.is_some(),
            self.negotiated,
            self.inner.transport(),
        ) {
            (true, _, "tcp") => "tcp+rc4",
            (false, true, "tcp") => "tcp+mse-plaintext",
            (true, _, "utp") => "utp+rc4",
            (false, true, "utp") => "utp+mse-plaintext",
            (true, _, _) => "rc4",
            (false, true, _) => "mse-plaintext",
            (false, false, inner) => inner,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pair(
        buffer: usize,
    ) -> (
        EncryptedStream<tokio::io::DuplexStream>,
        EncryptedStream<tokio::io::DuplexStream>,
    ) {
        let s = [5u8; super::super::crypto::DH_LEN];
        let skey = [6u8; 20];
        let (a, b) = tokio::io::duplex(buffer);
        (
            EncryptedStream::new(a, Streams::initiator(&s, &skey), Vec::new()),
            EncryptedStream::new(b, Streams::responder(&s, &skey), b"early".to_vec()),
        )
    }

    #[tokio::test]
    async fn megabytes_cross_a_small_pipe_intact_both_ways() {
        // A 1 KiB pipe forces partial writes of every 16 KiB chunk.
        let (mut a, mut b) = pair(1024);
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            a.write_all(&sent).await.unwrap();
            a.flush().await.unwrap();
            let mut back = vec![0u8; 5];
            a.read_exact(&mut back).await.unwrap();
            back
        });
        let mut early = [0u8; 5];
        b.read_exact(&mut early).await.unwrap();
        assert_eq!(&early, b"early", "the handshake's rest is served first");
        let mut got = vec![0u8; data.len()];
        b.read_exact(&mut got).await.unwrap();
        assert!(got == data, "intact after RC4 both ways");
        b.write_all(b"reply").await.unwrap();
        b.flush().await.unwrap();
        assert_eq!(writer.await.unwrap(), b"reply");
    }

    #[tokio::test]
    async fn the_bytes_on_the_wire_are_not_the_plaintext() {
        let s = [5u8; super::super::crypto::DH_LEN];
        let (a, mut raw) = tokio::io::duplex(4096);
        let mut a = EncryptedStream::new(a, Streams::initiator(&s, &[6; 20]), Vec::new());
        a.write_all(b"\x13BitTorrent protocol").await.unwrap();
        a.flush().await.unwrap();
        let mut wire = [0u8; 20];
        raw.read_exact(&mut wire).await.unwrap();
        assert_ne!(&wire, b"\x13BitTorrent protocol");
    }
}
