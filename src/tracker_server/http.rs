//! The HTTP face (axum): `/announce`, `/scrape`, `/stats` (JSON), `/metrics` (Prometheus text),
//! `/health`. Queries are read raw and parsed by [`super::query`]. Bad requests get a bencoded
//! `failure reason` with HTTP 200, which is what clients read. Connections are accepted, bounded
//! and timed by [`super::listener`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::listener::Connections;
use super::query::{parse_announce, parse_scrape};
use super::reply::{self, AnnounceReply};
use super::service::{bump, read, Counters, Tracker};
use super::store::{AnyStore, SwarmStore};

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
        "udp_rate_limited_total",
        "counter",
        "UDP datagrams dropped because their source address was over its rate.",
        read(&c.udp_limited).to_string(),
    );
    metric(
        "http_connections",
        "gauge",
        "HTTP connections open.",
        state.conns.live().to_string(),
    );
    metric(
        "http_evicted_total",
        "counter",
        "HTTP connections waiting for a request head closed to make room at the cap.",
        read(&state.conns.evicted).to_string(),
    );
    metric(
        "http_head_timeouts_total",
        "counter",
        "HTTP connections closed for not sending a whole request head in time.",
        read(&state.conns.head_timeouts).to_string(),
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
    out.push_str(&refused(c));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
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
