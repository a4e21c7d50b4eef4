//! The HTTP accept loop and connection lifecycle (IO): at most `max_connections` at once; a request
//! head must arrive whole within the head timeout; at the cap, the oldest connection still waiting
//! for a head (slow, or idle between keep-alive requests) is evicted so that a new client is served
//! at once. See [`super::conns`] for the choice.
//!
//! A new connection's first head is read here, into a small buffer, before hyper is involved: a
//! connection that never completes a head costs that buffer and its task, not hyper's two 8 KiB
//! buffers. A [`Shortcut`] may answer that first request from the head alone (an announce on a
//! connection that closes after it: no hyper, no router); anything else goes to hyper, the head
//! replayed to it. Later heads on a keep-alive connection are timed by hyper's `header_read_timeout`,
//! which starts when hyper begins waiting for the next request, so it also bounds keep-alive idling.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tower_service::Service;

use super::conns::{Key, Registry};

/// Whole request head, from the connection's start (or hyper's first wait for the next request on a
/// keep-alive connection). A client sends its head in one write; 5 s is ample for a slow link and
/// stops a slowloris (one byte at a time, forever) from holding a connection slot.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection that sends nothing for this long while it is being answered is closed.
pub const IDLE: Duration = Duration::from_secs(30);
/// An evicted connection in the middle of a reply gets this long to finish it.
pub const EVICT_GRACE: Duration = Duration::from_secs(1);
/// First size of the buffer a head is read into: an announce head is 300–600 bytes.
const HEAD_BUF: usize = 1024;
/// Past this much without the end of the head, hand it to hyper anyway (it answers 431 if it is too
/// large); 16 KiB holds the 8 KiB query bound and any sane headers.
const MAX_PREREAD: usize = 16 << 10;

/// The kernel's accept queue: connections it completes before we accept them. When every announce
/// is a new connection, a burst (or the tracker off the CPU for a few milliseconds) overflows std's
/// and mio's 128, and each overflowing client then waits a 1 s SYN retransmission. The kernel clamps
/// this to `net.core.somaxconn` (4096 by default).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds the HTTP listener with [`LISTEN_BACKLOG`].
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Answers a request from its head alone, without hyper or the router: the connection-per-announce
/// path (most clients open a connection, announce, and close it), where hyper's per-connection set-up
/// and axum's routing and extractors cost more than the announce itself.
pub trait Shortcut: Send + Sync + 'static {
    /// The whole HTTP response to the request in `head` (a complete request head, as read, perhaps
    /// with bytes after it), after which the connection is closed. `None` leaves the request to
    /// hyper and the router.
    fn answer<'a>(
        &'a self,
        head: &'a [u8],
        peer: SocketAddr,
    ) -> Option<impl Future<Output = Vec<u8>> + Send + 'a>;
}

/// The live connections: the registry behind a std mutex (held for a few instructions, never across
/// `.await`; notifications are sent after it is released).
pub struct Connections {
    registry: Mutex<Registry<Arc<Notify>>>,
    cap: usize,
    /// Signalled when a connection leaves, for an accept waiting at the cap.
    left: Notify,
    /// Connections evicted to make room, for `/metrics`.
    pub evicted: AtomicU64,
    /// Connections closed for not sending a whole head in time, for `/metrics`.
    pub head_timeouts: AtomicU64,
}

impl Connections {
    /// At most `cap` at once (evicted ones still closing aside).
    pub fn new(cap: usize) -> Connections {
        Connections {
            registry: Mutex::new(Registry::default()),
            cap: cap.max(1),
            left: Notify::new(),
            evicted: AtomicU64::new(0),
            head_timeouts: AtomicU64::new(0),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Registry<Arc<Notify>>) -> R) -> R {
        f(&mut self.registry.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A place for a new connection: at once when under the cap or when a waiting connection can be
    /// evicted for it; otherwise (all busy) once one leaves.
    async fn join(self: &Arc<Self>) -> Member {
        let evict = Arc::new(Notify::new());
        loop {
            let left = self.left.notified();
            if let Ok((key, victim)) = self.with(|r| r.admit(self.cap, evict.clone())) {
                if let Some(v) = victim {
                    v.notify_one();
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                }
                return Member {
                    conns: self.clone(),
                    key,
                    evict,
                };
            }
            left.await;
        }
    }

    /// Connections open now (evicted ones included until they close).
    pub fn live(&self) -> usize {
        self.with(|r| r.live())
    }
}

/// A connection's place in [`Connections`]; leaves it when dropped.
struct Member {
    conns: Arc<Connections>,
    key: Key,
    evict: Arc<Notify>,
}

impl Drop for Member {
    fn drop(&mut self) {
        let key = self.key;
        self.conns.with(|r| r.remove(key));
        self.conns.left.notify_one();
    }
}

struct Shared<S> {
    listener: TcpListener,
    conns: Arc<Connections>,
    hyper: hyper::server::conn::http1::Builder,
    head_timeout: Duration,
    shortcut: Arc<S>,
}

/// Serves `router` on `listener` until `shutdown`, with `conns` as the cap and `head_timeout` for
/// each request head; a connection's first request goes to `shortcut` first. A plain HTTP/1.1 accept
/// loop over hyper: a tracker never needs HTTP/2 or upgrades.
pub async fn serve<S: Shortcut>(
    listener: TcpListener,
    router: Router,
    shortcut: Arc<S>,
    conns: Arc<Connections>,
    head_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut hyper = hyper::server::conn::http1::Builder::new();
    hyper
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout);
    let shared = Arc::new(Shared {
        listener,
        conns,
        hyper,
        head_timeout,
        shortcut,
    });
    // One accept loop: the connections' tasks spread over the runtime's workers anyway. With one
    // loop per core on this listener, each new connection woke them all and all but one got EAGAIN
    // from accept(2): one loop took 15% less system time per connection-per-announce (2 cores).
    let acceptor = tokio::spawn(accept_loop(shared, router));
    shutdown.await;
    acceptor.abort();
    Ok(())
}

async fn accept_loop<S: Shortcut>(shared: Arc<Shared<S>>, router: Router) {
    loop {
        let (stream, addr) = match shared.listener.accept().await {
            Ok(a) => a,
            // Out of file descriptors and the like: back off a little.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // At the cap this evicts the oldest waiting connection; with every one busy it waits (and
        // further clients wait in the kernel's backlog).
        let member = shared.conns.join().await;
        // No set_nodelay: hyper writes a reply in one go, and the syscall costs per connection.
        let io = Guarded::new(stream, shared.head_timeout);
        tokio::spawn(connection(shared.clone(), router.clone(), io, addr, member));
    }
}

/// One connection: its first head, answered by the shortcut or else by hyper, which serves the rest;
/// closes early when evicted.
async fn connection<S: Shortcut>(
    shared: Arc<Shared<S>>,
    router: Router,
    mut io: Guarded,
    addr: SocketAddr,
    member: Member,
) {
    let mut head = Vec::with_capacity(HEAD_BUF);
    let whole = tokio::select! {
        r = read_head(&mut io, &mut head) => match r {
            Ok(whole) => whole,
            Err(e) => {
                if e.kind() == io::ErrorKind::TimedOut {
                    shared.conns.head_timeouts.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        },
        _ = member.evict.notified() => return,
    };
    // A whole head: being answered from now on. A head too long to buffer here stays evictable and
    // goes to hyper, which answers 431 or reads on under its own deadline.
    if whole {
        shared.conns.with(|r| r.busy(member.key));
        if let Some(reply) = shared.shortcut.answer(&head, addr) {
            let reply = reply.await;
            // The reply fits the socket's buffer unless the client stopped reading: bounded anyway.
            // Then the connection closes (dropped).
            let _ = tokio::time::timeout(IDLE, io.write_all(&reply)).await;
            return;
        }
    }
    // Boxed: hyper's connection is a large future, which would otherwise make every connection's
    // task that large (copied as it is spawned), shortcut or not.
    Box::pin(with_hyper(shared, router, io, head, addr, member)).await;
}

/// The rest of a connection, from its first head (replayed), served by hyper.
async fn with_hyper<S: Shortcut>(
    shared: Arc<Shared<S>>,
    router: Router,
    mut io: Guarded,
    head: Vec<u8>,
    addr: SocketAddr,
    member: Member,
) {
    let (conns, key) = (member.conns.clone(), member.key);
    io.head_done(head);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(addr));
        let reply = router.clone().call(req.map(axum::body::Body::new));
        let conns = conns.clone();
        async move {
            conns.with(|r| r.busy(key));
            let out = reply.await;
            // Answered (hyper now writes it): evictable again; an eviction lets the write finish.
            conns.with(|r| r.waiting(key));
            out
        }
    });
    let conn = shared.hyper.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if r.is_err_and(|e| e.is_timeout()) {
                shared.conns.head_timeouts.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        _ = member.evict.notified() => {}
    }
    // Closes at once when idle; after the reply in flight otherwise.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(EVICT_GRACE, conn).await;
}

/// Reads into `buf` until it holds a whole request head (`Ok(true)`) or [`MAX_PREREAD`] bytes
/// without one (`Ok(false)`). `Err` on end of stream or when the connection's head deadline passes.
async fn read_head(io: &mut Guarded, buf: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        if buf.len() >= MAX_PREREAD {
            return Ok(false);
        }
        if buf.capacity() - buf.len() < 256 {
            buf.reserve(buf.len().min(MAX_PREREAD - buf.len()).max(256));
        }
        let from = buf.len();
        if io.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if head_complete(buf, from) {
            return Ok(true);
        }
    }
}

/// Whether `buf` holds the end of a request head, given that `buf[..from]` did not (as httparse
/// reads it: lines end in CRLF or a bare LF). A client writes its head at once, so its end is
/// usually the end of `buf`: checked first, in constant time; otherwise one pass over the new bytes.
pub fn head_complete(buf: &[u8], from: usize) -> bool {
    if buf.ends_with(b"\r\n\r\n") || buf.ends_with(b"\n\n") {
        return true;
    }
    let tail = &buf[from.saturating_sub(2)..];
    tail.iter().enumerate().any(|(i, &b)| {
        b == b'\n' && matches!(tail.get(i + 1..), Some([b'\n', ..] | [b'\r', b'\n', ..]))
    })
}

/// A connection's stream. Until its first head is read the head must come whole within the head
/// timeout; after that it is closed when silent for [`IDLE`]. Bytes read ahead of hyper are
/// replayed to it first.
pub struct Guarded {
    stream: TcpStream,
    /// The head deadline, then the idle one.
    deadline: Pin<Box<tokio::time::Sleep>>,
    reading_head: bool,
    replay: Vec<u8>,
    replayed: usize,
}

impl Guarded {
    fn new(stream: TcpStream, head_timeout: Duration) -> Guarded {
        Guarded {
            stream,
            deadline: Box::pin(tokio::time::sleep(head_timeout)),
            reading_head: true,
            replay: Vec::new(),
            replayed: 0,
        }
    }

    /// The first head is in `head`: hyper reads it first; the idle rule starts.
    fn head_done(&mut self, head: Vec<u8>) {
        self.replay = head;
        self.replayed = 0;
        self.reading_head = false;
        let at = tokio::time::Instant::now() + IDLE;
        self.deadline.as_mut().reset(at);
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.replayed < this.replay.len() {
            let n = buf.remaining().min(this.replay.len() - this.replayed);
            buf.put_slice(&this.replay[this.replayed..this.replayed + n]);
            this.replayed += n;
            if this.replayed == this.replay.len() {
                this.replay = Vec::new();
                this.replayed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if !this.reading_head {
                    let at = tokio::time::Instant::now() + IDLE;
                    this.deadline.as_mut().reset(at);
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::ErrorKind::TimedOut.into())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_of_a_head_across_reads() {
        let head = b"GET /announce?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(head_complete(head, 0));
        assert!(!head_complete(&head[..head.len() - 1], 0));
        // Split anywhere, each new read checked from where the last ended.
        for cut in 1..head.len() {
            assert!(!head_complete(&head[..cut], 0), "cut {cut}");
            assert!(head_complete(head, cut), "cut {cut}");
        }
        assert!(head_complete(b"GET / HTTP/1.0\n\n", 0), "bare LF");
        assert!(head_complete(b"GET / HTTP/1.0\r\nA: b\n\r\n", 0), "mixed");
        assert!(!head_complete(b"GET /announce?info_hash=", 0));
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: a\r\n", 0));
        assert!(!head_complete(b"", 0));
        // Bytes after the head (a body, a pipelined request): found by the scan.
        assert!(head_complete(b"GET / HTTP/1.1\r\n\r\nGET", 0));
        assert!(head_complete(b"GET / HTTP/1.1\r\n\r\nGET", 17));
    }

    /// The plain definition, for the exhaustive comparison.
    fn naive(buf: &[u8]) -> bool {
        buf.windows(2).any(|w| w == b"\n\n") || buf.windows(3).any(|w| w == b"\n\r\n")
    }

    #[test]
    fn agrees_with_the_plain_definition_on_every_short_buffer() {
        let alphabet = [b'a', b'\r', b'\n'];
        for len in 0..=8u32 {
            for code in 0..3usize.pow(len) {
                let buf: Vec<u8> = (0..len)
                    .map(|i| alphabet[code / 3usize.pow(i) % 3])
                    .collect();
                // Every earlier read that did not yet hold a whole head.
                for from in (0..=buf.len()).filter(|&f| !naive(&buf[..f])) {
                    assert_eq!(
                        head_complete(&buf, from),
                        naive(&buf),
                        "{buf:?} from {from}"
                    );
                }
            }
        }
    }
}
