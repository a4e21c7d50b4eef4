//! Magnet URIs (BEP 9): [`Magnet::parse`] reads one (`xt=urn:btih:` in hex or base32,
//! `xt=urn:btmh:1220…` (BEP 52's SHA-256 multihash), both for a hybrid, `dn`, every `tr`, `ws` and
//! `x.pe`), [`magnet_link`] builds the one `--info` prints. Pure; every part bounded.

use std::net::{IpAddr, SocketAddr};

use percent_encoding::{percent_decode_str, utf8_percent_encode};

use crate::metainfo::{MAX_TRACKERS, MAX_WEB_SEEDS};
use crate::types::{InfoHash, InfoHashV2, InfoHashes, URL_COMPONENT};

/// Longest magnet URI read: far above any real one (hundreds of trackers fit), small enough that a
/// pasted blob is refused at once.
pub const MAX_URI_LEN: usize = 64 * 1024;
/// Most `x.pe` peers kept: a magnet names a few; more are ignored.
pub const MAX_PEERS: usize = 256;
/// Longest `dn` kept, in bytes: a file-system name limit (it only names the download until the
/// metadata arrives).
pub const MAX_NAME_LEN: usize = 255;

/// Why a magnet URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    /// Not `magnet:?…`.
    #[error("not a magnet link (it must start with `magnet:?`)")]
    NotMagnet,
    /// Over [`MAX_URI_LEN`].
    #[error("the magnet link is {0} bytes long, more than the {MAX_URI_LEN}-byte limit")]
    TooLong(usize),
    /// No `xt=urn:btih:` nor `xt=urn:btmh:`.
    #[error("the magnet link has no `xt=urn:btih:` or `xt=urn:btmh:` info-hash")]
    NoInfoHash,
    /// A `btih` that is neither 40 hex nor 32 base32 characters.
    #[error("`xt=urn:btih:{0}` is not a 40-character hex or 32-character base32 info-hash")]
    BadInfoHash(String),
    /// A `btmh` that is not `1220` (SHA-256, 32 bytes) and 64 hex characters.
    #[error(
        "`xt=urn:btmh:{0}` is not a v2 info-hash (`1220` and 64 hex characters: a SHA-256 multihash)"
    )]
    BadInfoHashV2(String),
    /// Two different `btih` hashes.
    #[error("the magnet link names two different info-hashes ({0} and {1})")]
    TwoInfoHashes(InfoHash, InfoHash),
    /// Two different `btmh` hashes.
    #[error("the magnet link names two different v2 info-hashes ({0} and {1})")]
    TwoInfoHashesV2(InfoHashV2, InfoHashV2),
}

/// A peer address from `x.pe`: an IP literal or a host name, with its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAddr {
    /// `1.2.3.4:6881` or `[::1]:6881`.
    Ip(SocketAddr),
    /// `host.example:6881`, resolved when dialled.
    Host(String, u16),
}

/// What a magnet link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// The torrent's swarm id: the `btih`, else the `btmh` truncated to 20 bytes (BEP 52).
    pub info_hash: InfoHash,
    /// Every hash the link names: `btih` (SHA-1), `btmh` (SHA-256), both for a hybrid. The
    /// metadata must match each.
    pub ids: InfoHashes,
    /// Its display name (`dn`), until the metadata gives the real one.
    pub name: Option<String>,
    /// Trackers (`tr`, `tr.N`), in order, each once, at most [`MAX_TRACKERS`].
    pub trackers: Vec<String>,
    /// Web seeds (`ws`), at most [`MAX_WEB_SEEDS`].
    pub web_seeds: Vec<String>,
    /// Peers to dial (`x.pe`), at most [`MAX_PEERS`].
    pub peers: Vec<PeerAddr>,
}

impl Magnet {
    /// Whether `text` looks like a magnet link (so the CLI reads it as one, not as a path).
    pub fn is_magnet(text: &str) -> bool {
        text.get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"))
    }

    /// Parses a magnet URI. Unknown parameters and unusable values (a `tr` that is not a URL, an
    /// `x.pe` without a port) are skipped; only a missing or malformed info-hash is an error.
    pub fn parse(uri: &str) -> Result<Magnet, MagnetError> {
        if uri.len() > MAX_URI_LEN {
            return Err(MagnetError::TooLong(uri.len()));
        }
        if !Self::is_magnet(uri) || !uri[7..].starts_with('?') {
            return Err(MagnetError::NotMagnet);
        }
        let mut ids = InfoHashes { v1: None, v2: None };
        let mut m = Magnet {
            info_hash: InfoHash([0; 20]),
            ids,
            name: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            peers: Vec::new(),
        };
        for pair in uri[8..].split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            // `tr.1`, `xt.2`: numbered forms of the same parameter.
            let key = key.split_once('.').map_or(key, |(k, n)| {
                if n.bytes().all(|b| b.is_ascii_digit()) {
                    k
                } else {
                    key
                }
            });
            match key {
                "xt" => xt(&decode(raw, false), &mut ids)?,
                "dn" if m.name.is_none() => m.name = Some(name(&decode(raw, true))),
                "tr" => push_url(&mut m.trackers, decode(raw, false), MAX_TRACKERS),
                "ws" => push_url(&mut m.web_seeds, decode(raw, false), MAX_WEB_SEEDS),
                "x.pe" => {
                    if let Some(p) = peer(&decode(raw, false)) {
                        if m.peers.len() < MAX_PEERS && !m.peers.contains(&p) {
                            m.peers.push(p);
                        }
                    }
                }
                _ => {}
            }
        }
        if ids.v1.is_none() && ids.v2.is_none() {
            return Err(MagnetError::NoInfoHash);
        }
        m.ids = ids;
        m.info_hash = ids.swarm();
        Ok(m)
    }
}

/// Reads one `xt` into `ids`: a `btih`, a `btmh`, or something else (ignored). The same hash twice
/// is fine; two different ones of a kind are an error.
fn xt(value: &str, ids: &mut InfoHashes) -> Result<(), MagnetError> {
    if let Some(h) = strip_prefix_ci(value, "urn:btih:") {
        let h = parse_btih(h)?;
        match ids.v1 {
            Some(old) if old != h => return Err(MagnetError::TwoInfoHashes(old, h)),
            _ => ids.v1 = Some(h),
        }
    } else if let Some(h) = strip_prefix_ci(value, "urn:btmh:") {
        let h = parse_btmh(h)?;
        match ids.v2 {
            Some(old) if old != h => return Err(MagnetError::TwoInfoHashesV2(old, h)),
            _ => ids.v2 = Some(h),
        }
    }
    Ok(())
}

/// `1220` (multihash: SHA2-256, 32 bytes) then 64 hex characters.
fn parse_btmh(h: &str) -> Result<InfoHashV2, MagnetError> {
    let bad = || MagnetError::BadInfoHashV2(crate::text::line(h));
    match h.get(..4) {
        Some("1220") => InfoHashV2::from_hex(&h[4..]).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// Percent-decoded text (invalid UTF-8 replaced); in `dn`, `+` is a space, as browsers write it.
fn decode(raw: &str, plus_is_space: bool) -> String {
    let raw = if plus_is_space {
        raw.replace('+', " ")
    } else {
        raw.to_string()
    };
    percent_decode_str(&raw).decode_utf8_lossy().into_owned()
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// 40 hex characters, or 32 base32 (RFC 4648, either case).
fn parse_btih(h: &str) -> Result<InfoHash, MagnetError> {
    let bad = || MagnetError::BadInfoHash(crate::text::line(h));
    match h.len() {
        40 => InfoHash::from_hex(&h.to_ascii_lowercase()).ok_or_else(bad),
        32 => base32(h).map(InfoHash).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// 32 base32 characters to 20 bytes.
fn base32(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let (mut acc, mut bits, mut n) = (0u64, 0u32, 0usize);
    for c in s.bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        while bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
        }
    }
    (n == 20).then_some(out)
}

/// A display name: one line, unprintable characters replaced, at most [`MAX_NAME_LEN`] bytes.
fn name(text: &str) -> String {
    let mut out = String::new();
    for c in crate::text::line(text).chars() {
        if out.len() + c.len_utf8() > MAX_NAME_LEN {
            break;
        }
        out.push(c);
    }
    out
}

/// Keeps `url` if it has a scheme and no whitespace or control characters, once, up to `max`.
fn push_url(list: &mut Vec<String>, url: String, max: usize) {
    let usable = url.contains("://")
        && !url.is_empty()
        && url.len() <= 8 * 1024
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if usable && list.len() < max && !list.contains(&url) {
        list.push(url);
    }
}

/// `host:port`, `1.2.3.4:port` or `[v6]:port`, port 1–65535.
fn peer(text: &str) -> Option<PeerAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return (addr.port() != 0 && !addr.ip().is_unspecified()).then_some(PeerAddr::Ip(addr));
    }
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    let valid_host = !host.is_empty()
        && host.len() <= 253
        && host.parse::<IpAddr>().is_err()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid_host.then(|| PeerAddr::Host(host.to_ascii_lowercase(), port))
}

/// `magnet:?xt=urn:btih:HEX&xt=urn:btmh:1220HEX&dn=NAME&tr=...&ws=...` (each `xt` the torrent has:
/// `btih` for v1, `btmh` for v2, both for a hybrid), trackers in tier order, then web seeds.
pub fn magnet_link<'a>(
    ids: &InfoHashes,
    name: &str,
    trackers: impl IntoIterator<Item = &'a String>,
    web_seeds: impl IntoIterator<Item = &'a String>,
) -> String {
    let mut xts = Vec::new();
    if let Some(v1) = ids.v1 {
        xts.push(format!("xt=urn:btih:{}", v1.to_hex()));
    }
    if let Some(v2) = ids.v2 {
        xts.push(format!("xt=urn:btmh:1220{}", v2.to_hex()));
    }
    let mut link = format!("magnet:?{}", xts.join("&"));
    let mut param = |key: &str, value: &str| {
        link.push('&');
        link.push_str(key);
        link.push('=');
        link.extend(utf8_percent_encode(value, URL_COMPONENT));
    };
    param("dn", name);
    trackers.into_iter().for_each(|t| param("tr", t));
    web_seeds.into_iter().for_each(|w| param("ws", w));
    link
}

#[cfg(test)]
mod tests;
