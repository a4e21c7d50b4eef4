//! KRPC, the DHT's message format (BEP 5, with BEP 32's `nodes6`/`want` and BEP 42's `ip`): one
//! bencoded dictionary per UDP datagram, a query (`ping`, `find_node`, `get_peers`,
//! `announce_peer`), a response or an error. Pure: bytes in, values out, and back. Every field from
//! outside is bounded; anything malformed is a [`KrpcError`] and the datagram is dropped.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::id::NodeId;
use crate::bencode::{decode, Limits, Node, Value};

/// Longest transaction id accepted (real clients use 2–4 bytes).
pub const MAX_TID: usize = 32;
/// Longest token accepted (libtorrent's are 4 bytes, ours 8).
pub const MAX_TOKEN: usize = 64;
/// Most peers read from one `values` list (BEP 5 replies fit about 100 in a datagram).
pub const MAX_VALUES: usize = 200;
/// Most nodes read from one `nodes` or `nodes6` string (8 is the norm).
pub const MAX_NODES: usize = 32;

/// Why a datagram is not a KRPC message we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KrpcError {
    /// Not bencode, or over the limits.
    #[error("not a KRPC message: {0}")]
    Bencode(String),
    /// A required field is missing or of the wrong type.
    #[error("KRPC message without a valid `{0}`")]
    Field(&'static str),
    /// A field is out of bounds.
    #[error("KRPC field `{0}` out of bounds")]
    Bounds(&'static str),
}

/// Which address families a querier wants nodes for (BEP 32 `want`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Want {
    /// `n4`.
    pub v4: bool,
    /// `n6`.
    pub v6: bool,
}

/// A query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `ping`.
    Ping,
    /// `find_node`: the nodes closest to `target`.
    FindNode { target: NodeId, want: Want },
    /// `get_peers`: peers of `info_hash`, else the closest nodes, and a token.
    GetPeers { info_hash: NodeId, want: Want },
    /// `announce_peer`: the querier has `info_hash` on `port` (its source port if `implied_port`).
    AnnouncePeer {
        info_hash: NodeId,
        port: u16,
        implied_port: bool,
        token: Vec<u8>,
    },
    /// A method we do not know (answered with error 204).
    Other(String),
}

impl Query {
    fn method(&self) -> &str {
        match self {
            Query::Ping => "ping",
            Query::FindNode { .. } => "find_node",
            Query::GetPeers { .. } => "get_peers",
            Query::AnnouncePeer { .. } => "announce_peer",
            Query::Other(m) => m,
        }
    }
}

/// A response (its kind is known from the transaction it answers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The responder's id.
    pub id: Option<NodeId>,
    /// Compact IPv4 nodes.
    pub nodes: Vec<(NodeId, SocketAddrV4)>,
    /// Compact IPv6 nodes (BEP 32).
    pub nodes6: Vec<(NodeId, SocketAddrV6)>,
    /// Peers (`get_peers`).
    pub values: Vec<SocketAddr>,
    /// Token for a later `announce_peer` (`get_peers`).
    pub token: Option<Vec<u8>>,
}

/// What a message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `y=q`, with the querier's id.
    Query { id: NodeId, query: Query },
    /// `y=r`.
    Response(Response),
    /// `y=e`: `[code, message]`.
    Error { code: i64, message: String },
}

/// One KRPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Transaction id.
    pub tid: Vec<u8>,
    /// Query, response or error.
    pub body: Body,
    /// BEP 42 `ip`: the address the sender sees us at (responses).
    pub ip: Option<SocketAddr>,
    /// The sender's client version (`v`), if any.
    pub version: Option<Vec<u8>>,
}

impl Message {
    /// Parses a datagram.
    pub fn parse(bytes: &[u8]) -> Result<Message, KrpcError> {
        let decoded = decode(bytes, Limits::KRPC).map_err(|e| KrpcError::Bencode(e.to_string()))?;
        let root = decoded.root();
        let tid = root
            .get(b"t")
            .and_then(|n| n.as_bytes())
            .ok_or(KrpcError::Field("t"))?;
        if tid.len() > MAX_TID {
            return Err(KrpcError::Bounds("t"));
        }
        let y = root
            .get(b"y")
            .and_then(|n| n.as_bytes())
            .ok_or(KrpcError::Field("y"))?;
        let body = match y {
            b"q" => parse_query(&root)?,
            b"r" => Body::Response(parse_response(
                &root.get(b"r").ok_or(KrpcError::Field("r"))?,
            )?),
            b"e" => parse_error(&root)?,
            _ => return Err(KrpcError::Field("y")),
        };
        let ip = root
            .get(b"ip")
            .and_then(|n| n.as_bytes())
            .and_then(compact_addr);
        let version = root
            .get(b"v")
            .and_then(|n| n.as_bytes())
            .filter(|v| v.len() <= 16)
            .map(<[u8]>::to_vec);
        Ok(Message {
            tid: tid.to_vec(),
            body,
            ip,
            version,
        })
    }

    /// The datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut root = Value::dict([("t", Value::Bytes(self.tid.clone()))]);
        match &self.body {
            Body::Query { id, query } => {
                root.insert("y", Value::str("q"));
                root.insert("q", Value::str(query.method()));
                root.insert("a", query_args(id, query));
            }
            Body::Response(r) => {
                root.insert("y", Value::str("r"));
                root.insert("r", response_dict(r));
            }
            Body::Error { code, message } => {
                root.insert("y", Value::str("e"));
                root.insert(
                    "e",
                    Value::List(vec![Value::Int(*code), Value::str(message)]),
                );
            }
        }
        if let Some(ip) = self.ip {
            root.insert("ip", Value::Bytes(encode_addr(&ip)));
        }
        if let Some(v) = &self.version {
            root.insert("v", Value::Bytes(v.clone()));
        }
        root.encode()
    }
}

fn id_of(node: Option<Node<'_, '_>>, field: &'static str) -> Result<NodeId, KrpcError> {
    let bytes = node
        .and_then(|n| n.as_bytes())
        .ok_or(KrpcError::Field(field))?;
    let id: [u8; 20] = bytes.try_into().map_err(|_| KrpcError::Field(field))?;
    Ok(NodeId(id))
}

fn parse_want(args: &Node<'_, '_>) -> Want {
    let mut want = Want::default();
    if let Some(list) = args.get(b"want").and_then(|n| n.as_list()) {
        for w in list.take(4) {
            match w.as_bytes() {
                Some(b"n4") => want.v4 = true,
                Some(b"n6") => want.v6 = true,
                _ => {}
            }
        }
    }
    want
}

fn parse_query(root: &Node<'_, '_>) -> Result<Body, KrpcError> {
    let method = root
        .get(b"q")
        .and_then(|n| n.as_bytes())
        .ok_or(KrpcError::Field("q"))?;
    let args = root
        .get(b"a")
        .filter(|a| a.is_dict())
        .ok_or(KrpcError::Field("a"))?;
    let id = id_of(args.get(b"id"), "a.id")?;
    let query = match method {
        b"ping" => Query::Ping,
        b"find_node" => Query::FindNode {
            target: id_of(args.get(b"target"), "a.target")?,
            want: parse_want(&args),
        },
        b"get_peers" => Query::GetPeers {
            info_hash: id_of(args.get(b"info_hash"), "a.info_hash")?,
            want: parse_want(&args),
        },
        b"announce_peer" => {
            let port = args
                .get(b"port")
                .and_then(|n| n.as_int())
                .and_then(|p| u16::try_from(p).ok());
            let implied_port = args.get(b"implied_port").and_then(|n| n.as_int()) == Some(1);
            let token = args
                .get(b"token")
                .and_then(|n| n.as_bytes())
                .ok_or(KrpcError::Field("a.token"))?;
            if token.len() > MAX_TOKEN {
                return Err(KrpcError::Bounds("a.token"));
            }
            Query::AnnouncePeer {
                info_hash: id_of(args.get(b"info_hash"), "a.info_hash")?,
                port: match (port, implied_port) {
                    (Some(p), _) => p,
                    (None, true) => 0,
                    (None, false) => return Err(KrpcError::Field("a.port")),
                },
                implied_port,
                token: token.to_vec(),
            }
        }
        other => Query::Other(String::from_utf8_lossy(&other[..other.len().min(32)]).into()),
    };
    Ok(Body::Query { id, query })
}

fn parse_response(r: &Node<'_, '_>) -> Result<Response, KrpcError> {
    if !r.is_dict() {
        return Err(KrpcError::Field("r"));
    }
    let mut out = Response {
        id: Some(id_of(r.get(b"id"), "r.id")?),
        ..Response::default()
    };
    if let Some(nodes) = r.get(b"nodes").and_then(|n| n.as_bytes()) {
        out.nodes = nodes
            .chunks_exact(26)
            .take(MAX_NODES)
            .map(|c| {
                let (id, addr) = c.split_at(20);
                (NodeId(id.try_into().unwrap_or([0; 20])), v4(addr))
            })
            .collect();
    }
    if let Some(nodes) = r.get(b"nodes6").and_then(|n| n.as_bytes()) {
        out.nodes6 = nodes
            .chunks_exact(38)
            .take(MAX_NODES)
            .map(|c| {
                let (id, addr) = c.split_at(20);
                (NodeId(id.try_into().unwrap_or([0; 20])), v6(addr))
            })
            .collect();
    }
    if let Some(values) = r.get(b"values").and_then(|n| n.as_list()) {
        out.values = values
            .take(MAX_VALUES)
            .filter_map(|v| v.as_bytes().and_then(compact_addr))
            .collect();
    }
    if let Some(token) = r.get(b"token").and_then(|n| n.as_bytes()) {
        if token.len() > MAX_TOKEN {
            return Err(KrpcError::Bounds("r.token"));
        }
        out.token = Some(token.to_vec());
    }
    Ok(out)
}

fn parse_error(root: &Node<'_, '_>) -> Result<Body, KrpcError> {
    let mut e = root
        .get(b"e")
        .and_then(|n| n.as_list())
        .ok_or(KrpcError::Field("e"))?;
    let code = e
        .next()
        .and_then(|n| n.as_int())
        .ok_or(KrpcError::Field("e"))?;
    let message = e
        .next()
        .and_then(|n| n.as_bytes())
        .map(|m| String::from_utf8_lossy(&m[..m.len().min(200)]).into_owned())
        .unwrap_or_default();
    Ok(Body::Error { code, message })
}

fn v4(b: &[u8]) -> SocketAddrV4 {
    let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    SocketAddrV4::new(ip, u16::from_be_bytes([b[4], b[5]]))
}

fn v6(b: &[u8]) -> SocketAddrV6 {
    let mut ip = [0u8; 16];
    ip.copy_from_slice(&b[..16]);
    SocketAddrV6::new(Ipv6Addr::from(ip), u16::from_be_bytes([b[16], b[17]]), 0, 0)
}

/// A compact address: 6 bytes (IPv4) or 18 (IPv6).
pub fn compact_addr(b: &[u8]) -> Option<SocketAddr> {
    match b.len() {
        6 => Some(SocketAddr::V4(v4(b))),
        18 => Some(SocketAddr::V6(v6(b))),
        _ => None,
    }
}

/// The compact form of `addr`.
pub fn encode_addr(addr: &SocketAddr) -> Vec<u8> {
    let mut out = match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
        std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

fn query_args(id: &NodeId, query: &Query) -> Value {
    let mut a = Value::dict([("id", Value::Bytes(id.0.to_vec()))]);
    let want = |a: &mut Value, w: &Want| {
        let mut list = Vec::new();
        if w.v4 {
            list.push(Value::str("n4"));
        }
        if w.v6 {
            list.push(Value::str("n6"));
        }
        if !list.is_empty() {
            a.insert("want", Value::List(list));
        }
    };
    match query {
        Query::Ping | Query::Other(_) => {}
        Query::FindNode { target, want: w } => {
            a.insert("target", Value::Bytes(target.0.to_vec()));
            want(&mut a, w);
        }
        Query::GetPeers { info_hash, want: w } => {
            a.insert("info_hash", Value::Bytes(info_hash.0.to_vec()));
            want(&mut a, w);
        }
        Query::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
        } => {
            a.insert("info_hash", Value::Bytes(info_hash.0.to_vec()));
            a.insert("port", Value::Int(i64::from(*port)));
            if *implied_port {
                a.insert("implied_port", Value::Int(1));
            }
            a.insert("token", Value::Bytes(token.clone()));
        }
    }
    a
}

fn response_dict(r: &Response) -> Value {
    let mut d = Value::Dict(Default::default());
    if let Some(id) = r.id {
        d.insert("id", Value::Bytes(id.0.to_vec()));
    }
    if !r.nodes.is_empty() {
        let mut b = Vec::with_capacity(r.nodes.len() * 26);
        for (id, addr) in &r.nodes {
            b.extend_from_slice(&id.0);
            b.extend_from_slice(&encode_addr(&SocketAddr::V4(*addr)));
        }
        d.insert("nodes", Value::Bytes(b));
    }
    if !r.nodes6.is_empty() {
        let mut b = Vec::with_capacity(r.nodes6.len() * 38);
        for (id, addr) in &r.nodes6 {
            b.extend_from_slice(&id.0);
            b.extend_from_slice(&encode_addr(&SocketAddr::V6(*addr)));
        }
        d.insert("nodes6", Value::Bytes(b));
    }
    if !r.values.is_empty() {
        let values = r.values.iter().map(|a| Value::Bytes(encode_addr(a)));
        d.insert("values", Value::List(values.collect()));
    }
    if let Some(t) = &r.token {
        d.insert("token", Value::Bytes(t.clone()));
    }
    d
}

#[cfg(test)]
mod tests;
