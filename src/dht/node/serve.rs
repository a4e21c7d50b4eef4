//! Answering the DHT: the receive task of each socket (responses to the waiting query, queries
//! answered under a per-source rate limit, anything malformed dropped) and the answers themselves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{now, Core, Inner, MAX_SOURCES, QUERIES_PER_SEC, VERSION};
use crate::dht::id::NodeId;
use crate::dht::krpc::{Body, Message, Query, Response, Want};
use crate::dht::table::K;

/// Per-source token buckets for incoming queries.
#[derive(Default)]
pub(super) struct Limiter {
    sources: HashMap<SocketAddr, (f64, Instant)>,
}

impl Limiter {
    fn allow(&mut self, key: SocketAddr, now: Instant) -> bool {
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&key) {
            self.sources
                .retain(|_, (_, t)| now.saturating_duration_since(*t) < Duration::from_secs(10));
            if self.sources.len() >= MAX_SOURCES {
                return false;
            }
        }
        let (tokens, last) = self
            .sources
            .entry(key)
            .or_insert((2.0 * QUERIES_PER_SEC, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * QUERIES_PER_SEC;
        *tokens = (*tokens + refill).min(2.0 * QUERIES_PER_SEC);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Inner {
    /// The reply to a query from `from`.
    fn answer(&self, from: SocketAddr, id: NodeId, query: Query) -> Body {
        let t = now();
        let mut core = self.core();
        core.table(&from).insert(id, from, false, t);
        let mut r = Response {
            id: Some(self.own),
            ..Response::default()
        };
        match query {
            Query::Ping => {}
            Query::FindNode { target, want } => add_closest(&core, &mut r, &target, want, from),
            Query::GetPeers { info_hash, want } => {
                r.token = Some(core.tokens.token(&from.ip()).to_vec());
                r.values = core
                    .store
                    .peers(&info_hash, t)
                    .into_iter()
                    .filter(|p| p.is_ipv6() == from.is_ipv6())
                    .collect();
                if r.values.is_empty() {
                    add_closest(&core, &mut r, &info_hash, want, from);
                }
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                if !core.tokens.valid(&from.ip(), &token) {
                    return Body::Error {
                        code: 203,
                        message: "bad token".into(),
                    };
                }
                let port = if implied_port { from.port() } else { port };
                let peer = SocketAddr::new(from.ip(), port);
                if self.policy.accepts(&peer) {
                    core.store.announce(info_hash, peer, t);
                }
            }
            Query::Other(_) => {
                return Body::Error {
                    code: 204,
                    message: "Method Unknown".into(),
                }
            }
        }
        Body::Response(r)
    }
}

/// Adds the K closest nodes to `target` of the families asked for (BEP 32 `want`), else of the
/// querier's own: `nodes` from the IPv4 table, `nodes6` from the IPv6 one.
fn add_closest(core: &Core, r: &mut Response, target: &NodeId, want: Want, from: SocketAddr) {
    let want = if want == Want::default() {
        Want {
            v4: from.is_ipv4(),
            v6: from.is_ipv6(),
        }
    } else {
        want
    };
    for (asked, table) in [(want.v4, &core.tables[0]), (want.v6, &core.tables[1])] {
        if !asked {
            continue;
        }
        for (id, addr) in table.closest(target, K) {
            match addr {
                SocketAddr::V4(a) => r.nodes.push((id, a)),
                SocketAddr::V6(a) => r.nodes6.push((id, a)),
            }
        }
    }
}

/// Handles the datagrams the shared port's receive loop queues (until it stops): responses go to
/// their waiting query, queries are answered (rate-limited per source), anything malformed is
/// dropped.
pub(super) async fn receive(
    inner: Arc<Inner>,
    v6: bool,
    mut rx: tokio::sync::mpsc::Receiver<crate::udp::Datagram>,
) {
    let socket = if v6 {
        inner.sockets.v6.clone()
    } else {
        inner.sockets.v4.clone()
    };
    let Some(socket) = socket else {
        return;
    };
    while let Some((buf, from)) = rx.recv().await {
        let Ok(msg) = Message::parse(&buf) else {
            continue;
        };
        match msg.body {
            Body::Response(r) => deliver(&inner, &msg.tid, from, Ok(r)),
            Body::Error { .. } => deliver(&inner, &msg.tid, from, Err(())),
            Body::Query { id, query } => {
                let key = if inner.policy.allow_local {
                    from
                } else {
                    SocketAddr::new(from.ip(), 0)
                };
                if !inner.core().limiter.allow(key, now()) || !inner.policy.accepts(&from) {
                    continue;
                }
                let reply = Message {
                    tid: msg.tid,
                    body: inner.answer(from, id, query),
                    ip: Some(from),
                    version: Some(VERSION.to_vec()),
                };
                let _ = socket.send_to(&reply.encode(), from).await;
            }
        }
    }
}

fn deliver(inner: &Inner, tid: &[u8], from: SocketAddr, reply: Result<Response, ()>) {
    let Ok(tid) = <[u8; 2]>::try_from(tid) else {
        return;
    };
    let tid = u16::from_be_bytes(tid);
    let mut pending = inner.pending();
    // Only the node we asked may answer: a reply from elsewhere with a guessed id is dropped.
    if pending.get(&tid).is_some_and(|p| p.addr == from) {
        if let Some(p) = pending.remove(&tid) {
            let _ = p.tx.send(reply);
        }
    }
}
