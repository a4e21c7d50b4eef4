//! The peer task's waits: one step of the stream (writing and reading together, without splitting
//! it, whatever its transport), and a deadline that may be absent.

use std::time::Instant;

use bytes::BytesMut;

use crate::net::PeerStream;

/// Sleeps until `t`; for ever when `None`.
pub(super) async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// What the stream did in one [`io_step`].
pub(super) enum Io {
    /// Took this many bytes of what we are sending.
    Wrote(std::io::Result<usize>),
    /// Read this many bytes into the read buffer (0: the peer closed).
    Read(std::io::Result<usize>),
}

/// Waits until `stream` takes some of `sending` (writing first, when there is anything to write) or
/// has bytes for `rbuf`: reading and writing go on together on one stream, whatever its transport,
/// without splitting it.
pub(super) async fn io_step<S: PeerStream>(
    stream: &mut S,
    sending: &mut BytesMut,
    rbuf: &mut BytesMut,
) -> Io {
    use bytes::Buf;
    use std::pin::Pin;
    use std::task::Poll;
    std::future::poll_fn(|cx| {
        if !sending.is_empty() {
            if let Poll::Ready(r) = Pin::new(&mut *stream).poll_write(cx, sending) {
                if let Ok(n) = &r {
                    sending.advance(*n);
                }
                return Poll::Ready(Io::Wrote(r));
            }
        }
        let before = rbuf.len();
        let mut buf = tokio::io::ReadBuf::uninit(rbuf.spare_capacity_mut());
        match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                // SAFETY: `poll_read` initialised the first `n` bytes of the spare capacity.
                unsafe { rbuf.set_len(before + n) };
                Poll::Ready(Io::Read(Ok(n)))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Io::Read(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
