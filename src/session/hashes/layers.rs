//! Fetching the piece layers of a torrent whose metadata came from a magnet link (BEP 9 sends the
//! `info` only; BEP 52 peers send the layers in `hashes` replies). Done once, after the metadata and
//! before the download: no block of a file is asked for before its layer is known, so every piece is
//! checked as a `.torrent` with `piece layers` would have it (a hybrid by SHA-1 and SHA-256).
//!
//! [`Wanted`] is the bookkeeping (pure): the requests of every file larger than a piece
//! ([`layer_requests`]), each reply checked against the file's `pieces root` ([`layer_chunk`]).
//! [`from_peer`] runs the exchange on one connection; [`fetch`] tries the peers that speak v2 (set
//! the BEP 52 reserved bit, or answered under the truncated v2 id), one after another, each bounded in time, until every layer is in.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::merkle::Hash;
use crate::metainfo::Info;
use crate::types::{InfoHash, PeerId};
use crate::wire::handshake::{Handshake, HANDSHAKE_LEN};
use crate::wire::hashes::{layer_chunk, layer_requests, HashRequest, Hashes};
use crate::wire::{Codec, Message};

/// Peers asked, one after another: each that fails (no answer, rejects, lies) costs one.
pub const MAX_PEERS: usize = 8;
/// Longest wait for a peer to connect, take our bytes or send its next ones.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest one peer is kept, however it trickles: a layer of 512 hashes is 16 KiB.
pub const PEER_DEADLINE: Duration = Duration::from_secs(300);
/// Requests unanswered at once on one connection (libtorrent answers them in turn; a burst of
/// thousands for a torrent of many files could meet a peer's own request limit).
pub const MAX_IN_FLIGHT: usize = 64;
/// Bytes read from a peer per call.
const READ_CHUNK: usize = 64 * 1024;

/// One file's layer being fetched.
#[derive(Debug, Clone)]
struct FileLayer {
    root: Hash,
    pieces: usize,
    requests: Vec<HashRequest>,
    /// Per request, its checked base hashes once a peer sent them.
    chunks: Vec<Option<Vec<Hash>>>,
}

/// The piece layers still wanted, and those already checked.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    files: Vec<FileLayer>,
}

impl Wanted {
    /// Every file of `info` larger than one piece whose layer `info` does not carry, once each
    /// (identical files share a root).
    pub fn for_info(info: &Info) -> Wanted {
        let plen = info.lengths.piece_length();
        let mut files: Vec<FileLayer> = Vec::new();
        for (i, f) in info.files.iter().enumerate() {
            let Some(root) = info.pieces_root(i) else {
                continue;
            };
            if info.piece_layer(i).is_some() || files.iter().any(|l| l.root == root) {
                continue;
            }
            let requests = layer_requests(root, f.length, plen);
            if !requests.is_empty() {
                files.push(FileLayer {
                    root,
                    pieces: f.length.div_ceil(u64::from(plen)) as usize,
                    chunks: vec![None; requests.len()],
                    requests,
                });
            }
        }
        Wanted { files }
    }

    /// Whether every layer is in.
    pub fn is_done(&self) -> bool {
        self.missing_files() == 0
    }

    /// Files whose layer is not complete yet.
    pub fn missing_files(&self) -> usize {
        (self.files.iter())
            .filter(|f| f.chunks.iter().any(Option::is_none))
            .count()
    }

    /// The requests not answered yet.
    pub fn missing(&self) -> Vec<HashRequest> {
        let unanswered = |f: &FileLayer| {
            (f.requests.iter().zip(&f.chunks))
                .filter(|(_, c)| c.is_none())
                .map(|(r, _)| *r)
                .collect::<Vec<_>>()
        };
        self.files.iter().flat_map(unanswered).collect()
    }

    /// A peer's `hashes` reply: kept when it answers one of our requests and proves the file's root.
    /// `Err` when it does not verify (the peer lied) or answers nothing we asked.
    pub fn on_hashes(&mut self, reply: &Hashes) -> Result<(), &'static str> {
        for f in &mut self.files {
            if let Some(k) = f.requests.iter().position(|r| *r == reply.request) {
                let chunk =
                    layer_chunk(&f.requests[k], reply).ok_or("hashes that do not verify")?;
                f.chunks[k] = Some(chunk.to_vec());
                return Ok(());
            }
        }
        Err("hashes we did not ask for")
    }

    /// The complete layers, by root: one hash per piece, padding left out.
    pub fn layers(&self) -> Vec<(Hash, Vec<Hash>)> {
        let complete = self.files.iter().filter_map(|f| {
            let mut layer: Vec<Hash> = Vec::with_capacity(f.pieces);
            for c in &f.chunks {
                layer.extend_from_slice(c.as_ref()?);
            }
            layer.truncate(f.pieces);
            Some((f.root, layer))
        });
        complete.collect()
    }
}

/// What one connection needs: the swarm id and our peer id for the handshake, and the piece count
/// (for the codec's `bitfield` check).
#[derive(Debug, Clone, Copy)]
pub struct Hello {
    /// The torrent's swarm id on this connection.
    pub info_hash: InfoHash,
    /// Its truncated v2 info-hash (the same as `info_hash` for a v2-only torrent): a peer may answer
    /// a hybrid's v1 handshake with it (BEP 52's upgrade).
    pub v2_id: InfoHash,
    /// Ours.
    pub peer_id: PeerId,
    /// The torrent's piece count.
    pub pieces: u32,
}

/// One peer's part: handshakes (ours with the BEP 52 bit), then the missing requests, at most
/// [`MAX_IN_FLIGHT`] unanswered at a time, until each is answered (`hashes` or `hash reject`). Its
/// own `hash request`s are rejected (we hold no layer yet); other messages are ignored. `Err` (the
/// caller drops the peer) for a reply that does not verify, a protocol error, silence for
/// [`PEER_TIMEOUT`], or the connection ending early.
pub async fn from_peer<S>(mut stream: S, hello: Hello, wanted: &mut Wanted) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    handshake(&mut stream, hello).await?;
    let mut queue = wanted.missing();
    queue.reverse();
    let mut in_flight: Vec<HashRequest> = Vec::new();
    let mut codec = Codec::new(hello.pieces).with_v2();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = BytesMut::new();
    loop {
        while in_flight.len() < MAX_IN_FLIGHT {
            let Some(r) = queue.pop() else { break };
            Message::HashRequest(r).encode(&mut out);
            in_flight.push(r);
        }
        if !out.is_empty() {
            within(stream.write_all(&out)).await?;
            out.clear();
        }
        if in_flight.is_empty() {
            return Ok(());
        }
        if within(stream.read_buf(&mut buf)).await? == 0 {
            return Err("closed the connection".into());
        }
        while let Some(msg) = codec.decode(&mut buf).map_err(|e| e.to_string())? {
            match msg {
                Message::Hashes(h) => {
                    wanted.on_hashes(&h).map_err(|why| format!("sent {why}"))?;
                    in_flight.retain(|r| *r != h.request);
                }
                Message::HashReject(r) => in_flight.retain(|p| *p != r),
                Message::HashRequest(r) => Message::HashReject(r).encode(&mut out),
                _ => {}
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
    }
}

/// Our handshake and the peer's: our torrent under either id, and a peer that speaks v2.
async fn handshake<S>(stream: &mut S, hello: Hello) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ours = Handshake::ours(hello.info_hash, hello.peer_id).with_v2(true);
    within(stream.write_all(&ours.encode())).await?;
    let mut theirs = [0u8; HANDSHAKE_LEN];
    within(stream.read_exact(&mut theirs)).await?;
    let ids = [hello.info_hash, hello.v2_id];
    let hs = Handshake::check_any(&theirs, &ids, hello.peer_id).map_err(|e| e.to_string())?;
    // libtorrent sets the bit only to offer the upgrade on a v1 connection; a handshake under the
    // v2 id says as much.
    if !hs.supports_v2() && hs.info_hash != hello.v2_id {
        return Err("does not speak BEP 52 (no v2 reserved bit, not the v2 id)".into());
    }
    Ok(())
}

/// One IO step, bounded by [`PEER_TIMEOUT`].
async fn within<T>(io: impl std::future::Future<Output = std::io::Result<T>>) -> Result<T, String> {
    match tokio::time::timeout(PEER_TIMEOUT, io).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("silent for {} s", PEER_TIMEOUT.as_secs())),
    }
}

/// Fetches the layers `info` lacks from `peers` (those that spoke v2 while sending the metadata), at
/// most [`MAX_PEERS`] of them, none silent for more than [`PEER_TIMEOUT`] nor kept more than
/// [`PEER_DEADLINE`]. Returns the layers by root, or why some are still missing.
pub async fn fetch(
    info: &Info,
    peers: &[SocketAddr],
    dialer: &crate::session::dial::Dialer,
    hello: Hello,
) -> Result<Vec<(Hash, Vec<Hash>)>, String> {
    let mut wanted = Wanted::for_info(info);
    let mut why = String::from("no peer that speaks BEP 52 sent the metadata");
    for &addr in peers.iter().take(MAX_PEERS) {
        if wanted.is_done() {
            break;
        }
        let attempt = async {
            let stream = (dialer.dial(addr, PEER_TIMEOUT).await).map_err(|e| e.to_string())?;
            from_peer(stream, hello, &mut wanted).await
        };
        let result = tokio::time::timeout(PEER_DEADLINE, attempt)
            .await
            .unwrap_or_else(|_| Err("too slow".into()));
        if let Err(e) = result {
            tracing::debug!(peer = %addr, error = %e, "piece layers: peer dropped");
            why = format!("{addr}: {}", crate::text::line(&e));
        } else if !wanted.is_done() {
            why = format!("{addr} rejected some hash requests");
        }
    }
    if wanted.is_done() {
        Ok(wanted.layers())
    } else {
        Err(format!(
            "no peer sent the piece layers of {} file(s) (BEP 52 hash requests; last: {why})",
            wanted.missing_files()
        ))
    }
}

#[cfg(test)]
mod tests;
