//! The HTTP face (axum): `/announce`, `/scrape`, `/stats` (JSON), `/metrics` (Prometheus text),
//! `/health`. Queries are read raw and parsed by [`super::query`]. Bad requests get a bencoded
//! `failure reason` with HTTP 200, which is what clients read. Connections are accepted, bounded
//! and timed by [`super::listener`].

use std::fmt::{Display, Write as _};
use std::future::Future;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, RawQuery, Request, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::listener::{Connections, Shortcut};
use super::query::{parse_announce, parse_scrape};
use super::reply::{self, AnnounceReply};
use super::service::{bump, read, Counters, Tracker};
use super::store::{AnyStore, SwarmStore, Totals};

/// What the handlers share.
pub struct HttpState {
    pub tracker: Arc<Tracker<AnyStore>>,
    /// Take the client's address from this header (behind a reverse proxy).
    pub real_ip_header: Option<HeaderName>,
    /// The open connections, for `/metrics`.
    pub conns: Arc<Connections>,
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

fn bencoded(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// The client's address: the last hop of `forwarded` (the `--real-ip-header` value, when set and
/// sent), else the connection's peer.
fn client_ip(forwarded: Option<&[u8]>, peer: SocketAddr) -> IpAddr {
    forwarded
        // Visible ASCII only, as `HeaderValue::to_str` reads it (httparse refuses controls).
        .filter(|v| v.is_ascii())
        .and_then(|v| std::str::from_utf8(v).ok())
        // X-Forwarded-For lists hops; the last one is what our proxy saw.
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .unwrap_or(peer.ip())
}

impl HttpState {
    /// The bencoded reply to an announce `query` from `peer` (`forwarded`: the real-ip header's
    /// value): what both the router and the shortcut answer.
    async fn announce_reply(
        &self,
        query: &str,
        forwarded: Option<&[u8]>,
        peer: SocketAddr,
    ) -> Vec<u8> {
        let t = &self.tracker;
        let a = match parse_announce(query) {
            Ok(a) => a,
            Err(e) => {
                bump(&t.counters.failures);
                return reply::failure(&e.to_string());
            }
        };
        match t.announce(&a, client_ip(forwarded, peer)).await {
            Ok(out) => reply::announce(&AnnounceReply {
                interval: t.settings.interval,
                min_interval: t.min_interval(),
                counts: out.counts,
                peers: &out.peers,
                compact: a.compact,
                no_peer_id: a.no_peer_id,
            }),
            Err(why) => reply::failure(&why),
        }
    }
}

/// The whole request rather than a `HeaderMap` and a `RawQuery`: those extractors copy every header
/// and the query, per announce; here the query and the one header are only borrowed.
async fn announce(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let forwarded = state
        .real_ip_header
        .as_ref()
        .and_then(|h| req.headers().get(h))
        .map(|v| v.as_bytes());
    let query = req.uri().query().unwrap_or("");
    bencoded(state.announce_reply(query, forwarded, peer).await)
}

/// An announce that the [`Shortcut`] may answer: its query and the real-ip header's value.
#[derive(Debug, PartialEq, Eq)]
pub struct ClosingAnnounce<'a> {
    pub query: &'a str,
    pub forwarded: Option<&'a [u8]>,
    /// An HTTP/1.0 request (answered in HTTP/1.0, as hyper does).
    pub http10: bool,
}

/// Most header lines a head may have for the shortcut (more: hyper reads it, up to its 100).
const SHORTCUT_HEADERS: usize = 32;

/// `GET /announce` whose connection closes after the reply (HTTP/1.1 with `Connection: close`, or
/// HTTP/1.0 without `keep-alive`), with no body and nothing hyper would treat specially (upgrades,
/// `Expect`); `None` otherwise, or when `head` does not parse. Pure.
pub fn closing_announce<'a>(
    head: &'a [u8],
    real_ip_header: Option<&HeaderName>,
) -> Option<ClosingAnnounce<'a>> {
    let mut headers = [httparse::EMPTY_HEADER; SHORTCUT_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !req.parse(head).ok()?.is_complete() || req.method? != "GET" {
        return None;
    }
    let query = match req.path?.strip_prefix("/announce")? {
        "" => "",
        rest => rest.strip_prefix('?')?,
    };
    let http10 = req.version? == 0;
    let mut close = http10;
    let mut forwarded = None;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    close = false;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    return None;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if h.value.trim_ascii() != b"0" {
                return None;
            }
        } else if ["transfer-encoding", "expect", "upgrade"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            return None;
        }
        if forwarded.is_none()
            && real_ip_header.is_some_and(|w| name.eq_ignore_ascii_case(w.as_str()))
        {
            forwarded = Some(h.value);
        }
    }
    // hyper would refuse what its URI parser refuses; non-ASCII is left to it.
    (close && query.is_ascii()).then_some(ClosingAnnounce {
        query,
        forwarded,
        http10,
    })
}

/// The whole response to a closing announce: `body` (bencoded), with the headers hyper sends (in
/// HTTP/1.0, where closing is the default, without `connection: close`).
pub fn closing_response(body: &[u8], date: &str, http10: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    let (version, connection) = if http10 {
        ("1.0", "")
    } else {
        ("1.1", "connection: close\r\n")
    };
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/{version} 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
         {connection}date: {date}\r\n\r\n",
        body.len()
    );
    out.extend_from_slice(body);
    out
}

/// `f` of the `Date` header's value, formatted once a second per thread.
fn with_http_date<R>(f: impl FnOnce(&str) -> R) -> R {
    thread_local! {
        static CACHE: std::cell::RefCell<(u64, String)> = const {
            std::cell::RefCell::new((0, String::new()))
        };
    }
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHE.with_borrow_mut(|(at, text)| {
        if *at != secs || text.is_empty() {
            *at = secs;
            *text = httpdate::fmt_http_date(now);
        }
        f(text)
    })
}

impl Shortcut for HttpState {
    fn answer<'a>(
        &'a self,
        head: &'a [u8],
        peer: SocketAddr,
    ) -> Option<impl Future<Output = Vec<u8>> + Send + 'a> {
        let a = closing_announce(head, self.real_ip_header.as_ref())?;
        // Boxed: the store's announce future is large (the Redis store's is), and would otherwise
        // make every connection's task that large, copied as the task is spawned and finished.
        let body = Box::pin(self.announce_reply(a.query, a.forwarded, peer));
        Some(async move {
            let body = body.await;
            with_http_date(|date| closing_response(&body, date, a.http10))
        })
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
        "refused_max_torrents_total": read(&c.refused_torrents),
        "refused_max_peers_total": read(&c.refused_peers),
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
    let up = t.store.health().await.is_ok();
    let totals = t.store.totals().await.ok();
    let mut out = String::new();
    requests_metrics(&mut out, &t.counters);
    http_metrics(&mut out, &state.conns);
    metric(
        &mut out,
        ("announces_per_second", "gauge"),
        "Announce rate over the last seconds.",
        format!("{:.3}", t.rate()),
    );
    metric(
        &mut out,
        ("store_up", "gauge"),
        "1 when the swarm store answers.",
        u8::from(up),
    );
    if let Some(tot) = totals {
        totals_metrics(&mut out, &tot);
    }
    out.push_str(&refused(&t.counters));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Appends one Prometheus series, `pixtorrent_tracker_<name>` of `kind`, with its help line.
fn metric(out: &mut String, (name, kind): (&str, &str), help: &str, value: impl Display) {
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "# HELP pixtorrent_tracker_{name} {help}\n# TYPE pixtorrent_tracker_{name} {kind}\n\
         pixtorrent_tracker_{name} {value}\n"
    );
}

/// The request counters shared by HTTP and UDP.
fn requests_metrics(out: &mut String, c: &Counters) {
    let counters = [
        (
            "announces_total",
            "Announces received (HTTP and UDP).",
            &c.announces,
        ),
        (
            "scrapes_total",
            "Scrapes received (HTTP and UDP).",
            &c.scrapes,
        ),
        (
            "failures_total",
            "Requests answered with a failure reason.",
            &c.failures,
        ),
        (
            "udp_connects_total",
            "UDP connect requests answered.",
            &c.udp_connects,
        ),
        (
            "udp_rate_limited_total",
            "UDP datagrams dropped because their source address was over its rate.",
            &c.udp_limited,
        ),
    ];
    for (name, help, value) in counters {
        metric(out, (name, "counter"), help, read(value));
    }
}

/// The HTTP connections: open now, evicted, timed out.
fn http_metrics(out: &mut String, conns: &Connections) {
    metric(
        out,
        ("http_connections", "gauge"),
        "HTTP connections open.",
        conns.live(),
    );
    metric(
        out,
        ("http_evicted_total", "counter"),
        "HTTP connections waiting for a request head closed to make room at the cap.",
        read(&conns.evicted),
    );
    metric(
        out,
        ("http_head_timeouts_total", "counter"),
        "HTTP connections closed for not sending a whole request head in time.",
        read(&conns.head_timeouts),
    );
}

/// The store's totals (left out when the store does not answer).
fn totals_metrics(out: &mut String, tot: &Totals) {
    let gauges = [
        ("torrents", "Torrents with peers.", tot.torrents),
        ("seeders", "Seeders across torrents.", tot.seeders),
        ("leechers", "Leechers across torrents.", tot.leechers),
        (
            "completed",
            "Completed downloads counted in live swarms.",
            tot.completed,
        ),
    ];
    for (name, help, value) in gauges {
        metric(out, (name, "gauge"), help, value);
    }
}

/// `refused_total`, one series per bound (`reason` names the option without its dashes).
fn refused(c: &Counters) -> String {
    format!(
        "# HELP pixtorrent_tracker_refused_total Announces refused at a bound: a new swarm past \
         --max-torrents, a new peer past --max-peers-total.\n\
         # TYPE pixtorrent_tracker_refused_total counter\n\
         pixtorrent_tracker_refused_total{{reason=\"max_torrents\"}} {}\n\
         pixtorrent_tracker_refused_total{{reason=\"max_peers_total\"}} {}\n",
        read(&c.refused_torrents),
        read(&c.refused_peers),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "info_hash=%01%02&peer_id=x&port=1";

    fn closing(head: &str) -> Option<ClosingAnnounce<'_>> {
        closing_announce(head.as_bytes(), None)
    }

    #[test]
    fn takes_announces_whose_connection_closes() {
        let want = Some(ClosingAnnounce {
            query: Q,
            forwarded: None,
            http10: false,
        });
        let h11 = format!("GET /announce?{Q} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!(closing(&h11), want);
        // Tokens in any case, among others; a bare LF; bytes after the head.
        let mixed = format!("GET /announce?{Q} HTTP/1.1\nconnection: TE, Close\n\nGET / HTTP/1.1");
        assert_eq!(closing(&mixed), want);
        // HTTP/1.0 closes unless it asks to keep the connection.
        let h10 = format!("GET /announce?{Q} HTTP/1.0\r\n\r\n");
        assert_eq!(closing(&h10).map(|a| (a.query, a.http10)), Some((Q, true)));
        let empty = closing("GET /announce HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(empty.map(|a| a.query), Some(""));
    }

    #[test]
    fn leaves_everything_else_to_hyper() {
        for head in [
            // Keep-alive: hyper serves the connection.
            format!("GET /announce?{Q} HTTP/1.1\r\nHost: t\r\n\r\n"),
            format!("GET /announce?{Q} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            // Other paths, methods and forms.
            "GET /scrape?info_hash=x HTTP/1.1\r\nConnection: close\r\n\r\n".into(),
            format!("GET /announcex?{Q} HTTP/1.1\r\nConnection: close\r\n\r\n"),
            format!("GET http://t/announce?{Q} HTTP/1.1\r\nConnection: close\r\n\r\n"),
            format!("POST /announce?{Q} HTTP/1.1\r\nConnection: close\r\n\r\n"),
            format!("HEAD /announce?{Q} HTTP/1.1\r\nConnection: close\r\n\r\n"),
            // A body, or anything hyper treats specially.
            format!("GET /announce?{Q} HTTP/1.1\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"),
            format!("GET /announce?{Q} HTTP/1.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"),
            format!("GET /announce?{Q} HTTP/1.1\r\nConnection: close\r\nExpect: 100-continue\r\n\r\n"),
            format!("GET /announce?{Q} HTTP/1.1\r\nConnection: close, upgrade\r\nUpgrade: h2c\r\n\r\n"),
            // Incomplete or malformed heads, non-ASCII in the target.
            format!("GET /announce?{Q} HTTP/1.1\r\nConnection: close\r\n"),
            format!("GET /announce?{Q} HTTP/2.0\r\nConnection: close\r\n\r\n"),
            "GET /announce?x=\u{e9} HTTP/1.1\r\nConnection: close\r\n\r\n".into(),
            "\r\n\r\n".into(),
            String::new(),
        ] {
            assert_eq!(closing(&head), None, "{head:?}");
        }
        // More header lines than the shortcut takes.
        let many: String = (0..SHORTCUT_HEADERS)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        let head = format!("GET /announce?{Q} HTTP/1.1\r\nConnection: close\r\n{many}\r\n");
        assert_eq!(closing(&head), None);
    }

    #[test]
    fn finds_the_real_ip_header_first_value() {
        let name = HeaderName::from_static("x-forwarded-for");
        let head = format!(
            "GET /announce?{Q} HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n\
             x-forwarded-for: 10.9.9.9\r\nConnection: close\r\n\r\n"
        );
        let a = closing_announce(head.as_bytes(), Some(&name)).unwrap();
        assert_eq!(a.forwarded, Some(&b"10.0.0.1, 10.0.0.2"[..]));
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(
            client_ip(a.forwarded, peer),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            closing_announce(head.as_bytes(), None).unwrap().forwarded,
            None
        );
        // Unreadable or absent: the connection's address.
        for bad in [&b"junk"[..], b"10.0.0.\xff", b""] {
            assert_eq!(client_ip(Some(bad), peer), peer.ip());
        }
        assert_eq!(client_ip(None, peer), peer.ip());
    }

    #[test]
    fn the_response_is_what_hyper_would_send() {
        let date = "Tue, 08 Dec 2026 02:21:21 GMT";
        assert_eq!(
            closing_response(b"d1:ai1ee", date, true),
            b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 8\r\n\
              date: Tue, 08 Dec 2026 02:21:21 GMT\r\n\r\nd1:ai1ee"
        );
        let out = closing_response(b"d1:ai1ee", date, false);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 8\r\n\
              connection: close\r\ndate: Tue, 08 Dec 2026 02:21:21 GMT\r\n\r\nd1:ai1ee"
        );
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut r = httparse::Response::new(&mut headers);
        let n = r.parse(&out).unwrap().unwrap();
        assert_eq!((r.code, &out[n..]), (Some(200), &b"d1:ai1ee"[..]));
        assert_eq!(with_http_date(str::len), 29, "IMF-fixdate");
    }
}
