//! HTTP(S) trackers: announce (BEP 3), compact peers (BEP 23), `peers6` (BEP 7) and scrape (BEP 48).
//! URL building and reply parsing are pure functions; [`announce`] and [`scrape`] add the IO.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use percent_encoding::percent_encode;

use super::proto::{read_compact, Family};
use super::{
    AnnounceRequest, AnnounceResponse, ScrapeStats, TrackerConfig, TrackerError,
    MAX_PEERS_PER_REPLY,
};
use crate::bencode::{self, Limits, Node};
use crate::text::line as sanitize;
use crate::types::{InfoHash, URL_COMPONENT};

/// The announce URL: `base` with our parameters appended to any query it already has (a passkey, say).
pub fn announce_url(base: &str, req: &AnnounceRequest) -> Result<String, TrackerError> {
    let enc = |b: &[u8]| percent_encode(b, URL_COMPONENT).to_string();
    let mut q = format!(
        "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact=1&key={:08x}",
        enc(&req.info_hash.0),
        enc(&req.peer_id.0),
        req.port,
        req.uploaded,
        req.downloaded,
        req.left,
        req.key,
    );
    if let Some(event) = req.event.as_str() {
        q.push_str("&event=");
        q.push_str(event);
    }
    if let Some(n) = req.numwant {
        q.push_str(&format!("&numwant={n}"));
    }
    if let Some(id) = &req.tracker_id {
        q.push_str("&trackerid=");
        q.push_str(&enc(id));
    }
    with_query(base, &q)
}

/// The scrape URL for `announce` (BEP 48): the last path part must start with `announce`, which becomes
/// `scrape`; the query is kept. `None` when the tracker has no scrape URL.
pub fn scrape_url(announce: &str) -> Option<String> {
    let url = reqwest::Url::parse(announce).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None; // UDP scrapes on the same endpoint (BEP 15 action 2)
    }
    let path = url.path();
    let slash = path.rfind('/')?;
    let rest = path[slash + 1..].strip_prefix("announce")?;
    let mut url = url.clone();
    url.set_path(&format!("{}scrape{rest}", &path[..=slash]));
    Some(url.to_string())
}

fn with_query(base: &str, extra: &str) -> Result<String, TrackerError> {
    let mut url = reqwest::Url::parse(base)
        .map_err(|e| TrackerError::BadUrl(format!("{}: {e}", sanitize(base))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TrackerError::Unsupported(url.scheme().to_string()));
    }
    url.set_fragment(None);
    let query = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&{extra}"),
        _ => extra.to_string(),
    };
    url.set_query(Some(&query));
    Ok(url.to_string())
}

/// Decodes a tracker reply body, naming what it was when it is not bencode.
fn decode_reply(body: &[u8]) -> Result<bencode::Decoded<'_>, TrackerError> {
    let doc = bencode::decode(body, Limits::TRACKER_REPLY).map_err(|e| {
        let trimmed = body.trim_ascii_start();
        TrackerError::Malformed(if body.is_empty() {
            "empty body".into()
        } else if trimmed.starts_with(b"<") {
            "an HTML page, not a bencoded tracker reply".into()
        } else {
            format!("not bencode ({e})")
        })
    })?;
    if !doc.root().is_dict() {
        return Err(TrackerError::Malformed(format!(
            "a bencoded {}, not a dictionary",
            doc.root().kind_name()
        )));
    }
    Ok(doc)
}

/// `failure reason`, if the reply carries one.
fn failure(root: Node<'_, '_>) -> Option<TrackerError> {
    let reason = root.get(b"failure reason")?;
    let text = reason
        .as_bytes()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    Some(TrackerError::Failure(sanitize(&text)))
}

/// A non-negative integer that fits `u32`, or `None`.
fn count(root: Node<'_, '_>, key: &[u8]) -> Option<u32> {
    root.get(key)?.as_int().and_then(|i| u32::try_from(i).ok())
}

/// Parses an announce reply. Peers come from compact `peers` (6 bytes each), a `peers` list of
/// dictionaries, and `peers6` (18 bytes each); port 0 and unparsable entries are skipped.
pub fn parse_announce(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let doc = decode_reply(body)?;
    let root = doc.root();
    if let Some(err) = failure(root) {
        return Err(err);
    }
    let mut peers = Vec::new();
    if let Some(p) = root.get(b"peers") {
        if let Some(bytes) = p.as_bytes() {
            read_compact(bytes, Family::V4, MAX_PEERS_PER_REPLY, &mut peers);
        } else if let Some(list) = p.as_list() {
            for entry in list.take(MAX_PEERS_PER_REPLY) {
                let ip = entry
                    .get(b"ip")
                    .and_then(|n| n.as_str())
                    .and_then(|s| s.parse::<IpAddr>().ok());
                let port = entry
                    .get(b"port")
                    .and_then(|n| n.as_int())
                    .and_then(|p| u16::try_from(p).ok());
                if let (Some(ip), Some(port)) = (ip, port) {
                    if port != 0 {
                        peers.push(SocketAddr::new(ip, port));
                    }
                }
            }
        } else {
            return Err(TrackerError::Malformed(format!(
                "`peers` is a {}",
                p.kind_name()
            )));
        }
    }
    if let Some(p6) = root.get(b"peers6").and_then(|n| n.as_bytes()) {
        read_compact(p6, Family::V6, MAX_PEERS_PER_REPLY, &mut peers);
    }
    peers.truncate(MAX_PEERS_PER_REPLY);
    Ok(AnnounceResponse {
        interval: count(root, b"interval"),
        min_interval: count(root, b"min interval"),
        seeders: count(root, b"complete"),
        leechers: count(root, b"incomplete"),
        peers,
        tracker_id: root
            .get(b"tracker id")
            .and_then(|n| n.as_bytes())
            .map(<[u8]>::to_vec),
        warning: root
            .get(b"warning message")
            .and_then(|n| n.as_bytes())
            .map(|b| sanitize(&String::from_utf8_lossy(b))),
    })
}

/// Parses a scrape reply: `files` maps raw 20-byte info-hashes to counts.
pub fn parse_scrape(body: &[u8]) -> Result<HashMap<InfoHash, ScrapeStats>, TrackerError> {
    let doc = decode_reply(body)?;
    let root = doc.root();
    if let Some(err) = failure(root) {
        return Err(err);
    }
    let files = root
        .get(b"files")
        .and_then(|f| f.as_dict())
        .ok_or_else(|| TrackerError::Malformed("scrape reply has no `files` dictionary".into()))?;
    let mut out = HashMap::new();
    for (key, stats) in files {
        if let Ok(hash) = <[u8; 20]>::try_from(key) {
            out.insert(
                InfoHash(hash),
                ScrapeStats {
                    complete: count(stats, b"complete").unwrap_or(0),
                    downloaded: count(stats, b"downloaded").unwrap_or(0),
                    incomplete: count(stats, b"incomplete").unwrap_or(0),
                },
            );
        }
    }
    Ok(out)
}

/// GETs `url` and turns an HTTP error status into the tracker's bencoded reason if it sent one.
async fn get(
    client: &reqwest::Client,
    config: &TrackerConfig,
    url: &str,
) -> Result<Vec<u8>, TrackerError> {
    crate::fetch::check(&config.bind, url)?;
    let body = crate::fetch::get(client, url, config.max_body, config.http_timeout).await?;
    if body.status != 200 {
        if let Some(err) = decode_reply(&body.bytes)
            .ok()
            .and_then(|d| failure(d.root()))
        {
            return Err(err);
        }
        return Err(TrackerError::Status {
            status: body.status,
            reason: body.reason,
        });
    }
    Ok(body.bytes)
}

/// Announces over HTTP(S).
pub async fn announce(
    client: &reqwest::Client,
    config: &TrackerConfig,
    base: &str,
    req: &AnnounceRequest,
) -> Result<AnnounceResponse, TrackerError> {
    let url = announce_url(base, req)?;
    parse_announce(&get(client, config, &url).await?)
}

/// Scrapes over HTTP(S) (BEP 48).
pub async fn scrape(
    client: &reqwest::Client,
    config: &TrackerConfig,
    announce: &str,
    hashes: &[InfoHash],
) -> Result<HashMap<InfoHash, ScrapeStats>, TrackerError> {
    let base = scrape_url(announce).ok_or(TrackerError::NoScrape)?;
    let query: Vec<String> = hashes
        .iter()
        .map(|h| format!("info_hash={}", percent_encode(&h.0, URL_COMPONENT)))
        .collect();
    let url = with_query(&base, &query.join("&"))?;
    parse_scrape(&get(client, config, &url).await?)
}

#[cfg(test)]
mod tests;
