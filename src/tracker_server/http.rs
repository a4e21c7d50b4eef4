//! The HTTP face (axum): `/announce`, `/scrape`, `/stats` (JSON), `/metrics` (Prometheus text),
//! `/health`. Queries are read raw and parsed by [`super::query`]. Bad requests get a bencoded
//! `failure reason` with HTTP 200, which is what clients read. Connections are bounded in number
//! (further ones wait in the kernel's backlog) and dropped after [`IDLE`] without a byte.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_service::Service;

use super::query::{parse_announce, parse_scrape};
use super::reply::{self, AnnounceReply};
use super::service::{bump, read, Tracker};
use super::store::{AnyStore, SwarmStore};

/// A connection that sends nothing for this long is closed.
pub const IDLE: Duration = Duration::from_secs(30);

/// What the handlers share.
pub struct HttpState {
    pub tracker: Arc<Tracker<AnyStore>>,
    /// Take the client's address from this header (behind a reverse proxy).
    pub real_ip_header: Option<HeaderName>,
}

/// The routes.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/announce", get(announce))
        .route("/scrape", get(scrape))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(state)
}

/// Serves `router` on `listener` with at most `max_connections` open at once, until `shutdown`.
/// A plain HTTP/1.1 accept loop over hyper, one per core on the shared listener: a tracker never
/// needs HTTP/2 or upgrades, and when every announce is a new connection, accepting is the work.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limited = Arc::new(Limited {
        inner: listener,
        permits: Arc::new(Semaphore::new(max_connections.max(1))),
    });
    let acceptors = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..acceptors {
        tasks.spawn(accept_loop(limited.clone(), router.clone()));
    }
    shutdown.await;
    tasks.abort_all();
    Ok(())
}

async fn accept_loop(limited: Arc<Limited>, router: Router) {
    loop {
        let (io, addr) = limited.accept().await;
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            router.clone().call(req.map(axum::body::Body::new))
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(io), service)
                .await;
        });
    }
}

fn bencoded(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

fn client_ip(state: &HttpState, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    state
        .real_ip_header
        .as_ref()
        .and_then(|h| headers.get(h))
        .and_then(|v| v.to_str().ok())
        // X-Forwarded-For lists hops; the last one is what our proxy saw.
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .unwrap_or(peer.ip())
}

async fn announce(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let t = &state.tracker;
    let a = match parse_announce(query.as_deref().unwrap_or("")) {
        Ok(a) => a,
        Err(e) => {
            bump(&t.counters.failures);
            return bencoded(reply::failure(&e.to_string()));
        }
    };
    let ip = client_ip(&state, &headers, peer);
    match t.announce(&a, ip).await {
        Ok(out) => bencoded(reply::announce(&AnnounceReply {
            interval: t.settings.interval,
            min_interval: t.min_interval(),
            counts: out.counts,
            peers: &out.peers,
            compact: a.compact,
            no_peer_id: a.no_peer_id,
        })),
        Err(why) => bencoded(reply::failure(&why)),
    }
}

async fn scrape(State(state): State<Arc<HttpState>>, RawQuery(query): RawQuery) -> Response {
    let t = &state.tracker;
    let hashes = match parse_scrape(query.as_deref().unwrap_or("")) {
        Ok(h) => h,
        Err(e) => {
            bump(&t.counters.failures);
            return bencoded(reply::failure(&e.to_string()));
        }
    };
    match t.scrape(&hashes).await {
        Ok(counts) => {
            let files: Vec<_> = hashes.into_iter().zip(counts).collect();
            bencoded(reply::scrape(&files))
        }
        Err(why) => bencoded(reply::failure(&why)),
    }
}

async fn stats(State(state): State<Arc<HttpState>>) -> Response {
    let t = &state.tracker;
    let c = &t.counters;
    let mut v = serde_json::json!({
        "store": t.store.kind(),
        "announces_per_second": t.rate(),
        "announces_total": read(&c.announces),
        "scrapes_total": read(&c.scrapes),
        "failures_total": read(&c.failures),
    });
    match t.store.totals().await {
        Ok(tot) => {
            v["torrents"] = tot.torrents.into();
            v["seeders"] = tot.seeders.into();
            v["leechers"] = tot.leechers.into();
            v["completed"] = tot.completed.into();
        }
        Err(e) => v["error"] = e.to_string().into(),
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{v}\n"),
    )
        .into_response()
}

async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    let t = &state.tracker;
    let c = &t.counters;
    let up = t.store.health().await.is_ok();
    let totals = t.store.totals().await.ok();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        out.push_str(&format!(
            "# HELP pixtorrent_tracker_{name} {help}\n# TYPE pixtorrent_tracker_{name} {kind}\npixtorrent_tracker_{name} {value}\n"
        ));
    };
    metric(
        "announces_total",
        "counter",
        "Announces received (HTTP and UDP).",
        read(&c.announces).to_string(),
    );
    metric(
        "scrapes_total",
        "counter",
        "Scrapes received (HTTP and UDP).",
        read(&c.scrapes).to_string(),
    );
    metric(
        "failures_total",
        "counter",
        "Requests answered with a failure reason.",
        read(&c.failures).to_string(),
    );
    metric(
        "udp_connects_total",
        "counter",
        "UDP connect requests answered.",
        read(&c.udp_connects).to_string(),
    );
    metric(
        "announces_per_second",
        "gauge",
        "Announce rate over the last seconds.",
        format!("{:.3}", t.rate()),
    );
    metric(
        "store_up",
        "gauge",
        "1 when the swarm store answers.",
        u8::from(up).to_string(),
    );
    if let Some(tot) = totals {
        metric(
            "torrents",
            "gauge",
            "Torrents with peers.",
            tot.torrents.to_string(),
        );
        metric(
            "seeders",
            "gauge",
            "Seeders across torrents.",
            tot.seeders.to_string(),
        );
        metric(
            "leechers",
            "gauge",
            "Leechers across torrents.",
            tot.leechers.to_string(),
        );
        metric(
            "completed",
            "gauge",
            "Completed downloads counted in live swarms.",
            tot.completed.to_string(),
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn health(State(state): State<Arc<HttpState>>) -> Response {
    match state.tracker.store.health().await {
        Ok(()) => (
            StatusCode::OK,
            format!("ok ({})\n", state.tracker.store.kind()),
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

/// A listener that holds a permit per open connection.
pub struct Limited {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl Limited {
    async fn accept(&self) -> (Guarded, SocketAddr) {
        loop {
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                // The semaphore is never closed; wait rather than spin if it were.
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // No set_nodelay: hyper writes a reply in one go, and the syscall costs per connection.
                    return (
                        Guarded {
                            stream,
                            _permit: permit,
                            idle: Box::pin(tokio::time::sleep(IDLE)),
                        },
                        addr,
                    );
                }
                // Out of file descriptors and the like: back off a little.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// A connection holding its permit, closed when idle for [`IDLE`].
pub struct Guarded {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.idle.as_mut().reset(tokio::time::Instant::now() + IDLE);
                Poll::Ready(r)
            }
            Poll::Pending => match this.idle.as_mut().poll(cx) {
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
