//! Announce and scrape requests, parsed from the raw query string (pure). Values are percent-decoded
//! to bytes: a binary `info_hash` survives, which a UTF-8 query extractor would mangle. `+` stays a
//! literal byte (clients escape it; a raw one in a binary hash means 0x2b, not a space).

use std::borrow::Cow;
use std::net::IpAddr;

use crate::tracker::proto::Event;
use crate::types::{InfoHash, PeerId};

/// Longest query string accepted (a scrape of [`MAX_SCRAPE`] hashes fits easily).
pub const MAX_QUERY: usize = 8192;
/// Most `info_hash` values in one scrape.
pub const MAX_SCRAPE: usize = 64;
/// Peers returned when the client does not say.
pub const DEFAULT_NUMWANT: usize = 50;
/// Most peers returned to one announce.
pub const MAX_NUMWANT: usize = 200;

/// A parsed `GET /announce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Bytes the peer still needs; `None` when not given (counted as a leecher).
    pub left: Option<u64>,
    pub event: Event,
    /// Compact peers (BEP 23); the default.
    pub compact: bool,
    pub numwant: usize,
    pub no_peer_id: bool,
    pub key: Option<Vec<u8>>,
    /// The `ip` parameter; used only with `--trust-ip-param`.
    pub ip: Option<IpAddr>,
}

/// Why a request was refused; the text goes into `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("request too long")]
    TooLong,
    #[error("too many info_hash values (at most {MAX_SCRAPE})")]
    TooMany,
}

/// `key=value` pairs, both percent-decoded to bytes (borrowed from `raw` when nothing was escaped:
/// keys and numbers, which saves two allocations a pair on the announce path).
fn pairs(raw: &str) -> impl Iterator<Item = (Cow<'_, [u8]>, Cow<'_, [u8]>)> + '_ {
    raw.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (decode(k.as_bytes()), decode(v.as_bytes()))
    })
}

/// Percent-decodes `s` as `percent_decode` does (a `%` not followed by two hex digits stays as it
/// is), in one pass: the escaped ids of an announce cost a tenth of the iterator's instructions.
fn decode(s: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = s.iter().position(|&b| b == b'%') else {
        return Cow::Borrowed(s);
    };
    let mut out = Vec::with_capacity(s.len());
    out.extend_from_slice(&s[..first]);
    let mut i = first;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            if let (Some(hi), Some(lo)) = (hex(s.get(i + 1)), hex(s.get(i + 2))) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(out)
}

/// A hex digit's value.
fn hex(b: Option<&u8>) -> Option<u8> {
    match *b? {
        d @ b'0'..=b'9' => Some(d - b'0'),
        d @ b'a'..=b'f' => Some(d - b'a' + 10),
        d @ b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    }
}

fn id(v: &[u8], name: &'static str) -> Result<[u8; 20], QueryError> {
    v.try_into().map_err(|_| QueryError::Invalid(name))
}

fn number(v: &[u8], name: &'static str) -> Result<u64, QueryError> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(QueryError::Invalid(name))
}

/// Parses an announce query.
pub fn parse_announce(raw: &str) -> Result<Announce, QueryError> {
    if raw.len() > MAX_QUERY {
        return Err(QueryError::TooLong);
    }
    let (mut info_hash, mut peer_id, mut port) = (None, None, None);
    let mut a = Announce {
        info_hash: InfoHash([0; 20]),
        peer_id: PeerId([0; 20]),
        port: 0,
        uploaded: 0,
        downloaded: 0,
        left: None,
        event: Event::None,
        compact: true,
        numwant: DEFAULT_NUMWANT,
        no_peer_id: false,
        key: None,
        ip: None,
    };
    for (k, v) in pairs(raw) {
        match &*k {
            b"info_hash" => info_hash = Some(InfoHash(id(&v, "info_hash")?)),
            b"peer_id" => peer_id = Some(PeerId(id(&v, "peer_id")?)),
            b"port" => {
                let p = number(&v, "port")?;
                port = Some(
                    u16::try_from(p)
                        .ok()
                        .filter(|&p| p > 0)
                        .ok_or(QueryError::Invalid("port"))?,
                );
            }
            b"uploaded" => a.uploaded = number(&v, "uploaded")?,
            b"downloaded" => a.downloaded = number(&v, "downloaded")?,
            b"left" => a.left = Some(number(&v, "left")?),
            b"event" => a.event = Event::from_query(&v).ok_or(QueryError::Invalid("event"))?,
            b"compact" => a.compact = &*v != b"0",
            // Negative or junk numwant (some clients send -1): the default.
            b"numwant" => {
                a.numwant = number(&v, "numwant").map_or(DEFAULT_NUMWANT, |n| {
                    usize::try_from(n).unwrap_or(MAX_NUMWANT).min(MAX_NUMWANT)
                })
            }
            b"no_peer_id" => a.no_peer_id = &*v != b"0",
            b"key" => a.key = Some(v.iter().take(64).copied().collect()),
            b"ip" => {
                a.ip = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse::<IpAddr>().ok())
            }
            _ => {}
        }
    }
    a.info_hash = info_hash.ok_or(QueryError::Missing("info_hash"))?;
    a.peer_id = peer_id.ok_or(QueryError::Missing("peer_id"))?;
    a.port = port.ok_or(QueryError::Missing("port"))?;
    Ok(a)
}

/// Parses a scrape query: one or more `info_hash` values (a full scrape is not offered).
pub fn parse_scrape(raw: &str) -> Result<Vec<InfoHash>, QueryError> {
    if raw.len() > MAX_QUERY {
        return Err(QueryError::TooLong);
    }
    let mut hashes = Vec::new();
    for (k, v) in pairs(raw) {
        if &*k == b"info_hash" {
            if hashes.len() == MAX_SCRAPE {
                return Err(QueryError::TooMany);
            }
            let h = InfoHash(id(&v, "info_hash")?);
            if !hashes.contains(&h) {
                hashes.push(h);
            }
        }
    }
    if hashes.is_empty() {
        return Err(QueryError::Missing("info_hash"));
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(b: &[u8]) -> String {
        b.iter().map(|x| format!("%{x:02X}")).collect()
    }

    fn base() -> String {
        format!(
            "info_hash={}&peer_id=-PX0100-abcdefghijkl&port=6881",
            esc(&[0xff; 20])
        )
    }

    #[test]
    fn decoding_agrees_with_percent_encoding_on_every_short_input() {
        // Hex digits of both cases, a non-digit, the escape itself, a byte above ASCII.
        let alphabet = [b'%', b'4', b'a', b'F', b'g', 0xc3];
        for len in 0..=6u32 {
            for code in 0..6usize.pow(len) {
                let s: Vec<u8> = (0..len)
                    .map(|i| alphabet[code / 6usize.pow(i) % 6])
                    .collect();
                let want: Vec<u8> = percent_encoding::percent_decode(&s).collect();
                assert_eq!(&*decode(&s), &want[..], "{s:?}");
                assert_eq!(matches!(decode(&s), Cow::Borrowed(_)), !s.contains(&b'%'));
            }
        }
    }

    #[test]
    fn minimal_announce_has_defaults() {
        let a = parse_announce(&base()).unwrap();
        assert_eq!(a.info_hash, InfoHash([0xff; 20]));
        assert_eq!(a.peer_id, PeerId(*b"-PX0100-abcdefghijkl"));
        assert_eq!(a.port, 6881);
        assert_eq!(a.event, Event::None);
        assert!(a.compact);
        assert_eq!(a.numwant, DEFAULT_NUMWANT);
        assert_eq!(a.left, None);
    }

    #[test]
    fn binary_hash_with_plus_and_raw_bytes() {
        // 0x2b ('+') raw, unreserved letters raw, the rest escaped.
        let mut h = [b'a'; 20];
        h[0] = b'+';
        h[1] = 0;
        let q = format!(
            "info_hash=+%00aaaaaaaaaaaaaaaaaa&peer_id={}&port=1",
            esc(&[1; 20])
        );
        assert_eq!(parse_announce(&q).unwrap().info_hash, InfoHash(h));
    }

    #[test]
    fn every_field() {
        let q = format!(
            "{}&uploaded=10&downloaded=20&left=0&event=completed&compact=0&numwant=7&no_peer_id=1&key=abc&ip=10.1.2.3",
            base()
        );
        let a = parse_announce(&q).unwrap();
        assert_eq!((a.uploaded, a.downloaded, a.left), (10, 20, Some(0)));
        assert_eq!(a.event, Event::Completed);
        assert!(!a.compact && a.no_peer_id);
        assert_eq!(a.numwant, 7);
        assert_eq!(a.key.as_deref(), Some(&b"abc"[..]));
        assert_eq!(a.ip, Some("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn numwant_is_capped_and_junk_is_default() {
        let a = parse_announce(&format!("{}&numwant=100000", base())).unwrap();
        assert_eq!(a.numwant, MAX_NUMWANT);
        let a = parse_announce(&format!("{}&numwant=-1", base())).unwrap();
        assert_eq!(a.numwant, DEFAULT_NUMWANT);
    }

    #[test]
    fn refusals() {
        let h = esc(&[1; 20]);
        let cases = [
            (
                format!("peer_id={h}&port=1"),
                QueryError::Missing("info_hash"),
            ),
            (
                format!("info_hash={h}&port=1"),
                QueryError::Missing("peer_id"),
            ),
            (
                format!("info_hash={h}&peer_id={h}"),
                QueryError::Missing("port"),
            ),
            (
                format!("info_hash=abc&peer_id={h}&port=1"),
                QueryError::Invalid("info_hash"),
            ),
            (
                format!("info_hash={h}&peer_id={h}&port=0"),
                QueryError::Invalid("port"),
            ),
            (
                format!("info_hash={h}&peer_id={h}&port=65536"),
                QueryError::Invalid("port"),
            ),
            (
                format!("info_hash={h}&peer_id={h}&port=1&left=-5"),
                QueryError::Invalid("left"),
            ),
            (
                format!("info_hash={h}&peer_id={h}&port=1&event=bogus"),
                QueryError::Invalid("event"),
            ),
            ("x".repeat(MAX_QUERY + 1), QueryError::TooLong),
            (String::new(), QueryError::Missing("info_hash")),
            ("&&&===&".into(), QueryError::Missing("info_hash")),
        ];
        for (q, want) in cases {
            assert_eq!(parse_announce(&q).unwrap_err(), want, "{q}");
        }
    }

    #[test]
    fn scrape_takes_several_hashes_deduplicated_and_bounded() {
        let q = format!(
            "info_hash={}&info_hash={}&info_hash={}",
            esc(&[1; 20]),
            esc(&[2; 20]),
            esc(&[1; 20])
        );
        assert_eq!(
            parse_scrape(&q).unwrap(),
            vec![InfoHash([1; 20]), InfoHash([2; 20])]
        );
        assert_eq!(
            parse_scrape("").unwrap_err(),
            QueryError::Missing("info_hash")
        );
        let many: Vec<String> = (0..=MAX_SCRAPE as u8)
            .map(|i| format!("info_hash={}", esc(&[i; 20])))
            .collect();
        assert_eq!(
            parse_scrape(&many.join("&")).unwrap_err(),
            QueryError::TooMany
        );
        assert_eq!(
            parse_scrape("info_hash=short").unwrap_err(),
            QueryError::Invalid("info_hash")
        );
    }

    #[test]
    fn reads_what_our_client_sends() {
        use crate::tracker::{http::announce_url, AnnounceRequest};
        let events = [
            Event::None,
            Event::Started,
            Event::Completed,
            Event::Stopped,
        ];
        for i in 0..7 {
            let event = events[i % 4];
            // 7 runs of 40 id bytes: every byte value, `%` and `+` included, goes through.
            let base = (i * 40) as u8;
            let req = AnnounceRequest {
                info_hash: InfoHash(std::array::from_fn(|n| base.wrapping_add(n as u8))),
                peer_id: PeerId(std::array::from_fn(|n| base.wrapping_add(20 + n as u8))),
                port: 51413,
                uploaded: u64::MAX,
                downloaded: 7,
                left: i as u64,
                event,
                numwant: Some(30),
                key: 0xdead_beef,
                tracker_id: None,
            };
            let url = announce_url("http://t.example/announce?passkey=x", &req).unwrap();
            let (_, raw) = url.split_once('?').unwrap();
            let a = parse_announce(raw).unwrap();
            assert_eq!((a.info_hash, a.peer_id), (req.info_hash, req.peer_id));
            assert_eq!((a.port, a.event, a.numwant), (51413, event, 30));
            assert_eq!((a.uploaded, a.downloaded), (u64::MAX, 7));
            assert_eq!(a.left, Some(i as u64));
            assert!(a.compact);
            assert_eq!(a.key.as_deref(), Some(&b"deadbeef"[..]));
        }
    }
}
