//! From a magnet link to a torrent: the `.torrent` saved beside an earlier download of it, when
//! there is one (a restart needs no peer), else the metadata fetched from peers
//! ([`super::metadata`]), checked, with the piece layers of a v2 or hybrid torrent fetched from the
//! peers that speak v2 ([`super::hashes::layers`]), and saved as `DIR/<name>.torrent`
//! (layers included) for the next run.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::hashes::layers;
use super::metadata::{fetch, Fetch, Reach};
use super::pool::PeerSource;
use super::SessionError;
use crate::magnet::{Magnet, PeerAddr};
use crate::metainfo::{MetaVersion, Metainfo};
use crate::wire::ut_metadata::torrent_with_layers;

/// `.torrent` files looked at in the output directory when looking for a saved one.
const MAX_SAVED_SCANNED: usize = 256;
/// Time to resolve the host names of a link's `x.pe`.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a magnet link becomes.
pub struct Resolved {
    /// The torrent, with the link's trackers and web seeds.
    pub meta: Metainfo,
    /// The peers the link names (`x.pe`), to dial in the download too.
    pub peers: Vec<(SocketAddr, PeerSource)>,
    /// Where the `.torrent` was found or saved (`None`: not saved).
    pub saved: Option<std::path::PathBuf>,
    /// Fetched from peers now (not found saved by an earlier run).
    pub fetched: bool,
}

/// The torrent of `magnet`: found in `dir` if an earlier run saved it there, else fetched from the
/// link's trackers and peers (and `manual` ones) and, when `dir` is given, saved there.
pub async fn resolve(
    magnet: &Magnet,
    manual: &[SocketAddr],
    dir: Option<&Path>,
    reach: Reach,
    progress: impl Fn(&str) + Send + 'static,
) -> Result<Resolved, SessionError> {
    let mut peers: Vec<(SocketAddr, PeerSource)> = Vec::new();
    for p in &magnet.peers {
        for addr in resolve_peer(p).await {
            peers.push((addr, PeerSource::Magnet));
        }
    }
    if let Some(found) = dir.and_then(|d| saved(d, magnet)) {
        let (path, meta) = found;
        return Ok(Resolved {
            meta,
            peers,
            saved: Some(path),
            fetched: false,
        });
    }
    let mut asked = peers.clone();
    asked.extend(manual.iter().map(|a| (*a, PeerSource::Manual)));
    let dialer = reach.dialer.clone();
    let fetched = fetch(
        Fetch {
            info_hash: magnet.info_hash,
            ids: magnet.ids,
            trackers: magnet.trackers.clone(),
            peers: asked,
            reach,
        },
        progress,
    )
    .await?;
    let torrent = |layers: &[_]| {
        let bytes = torrent_with_layers(&fetched.info, &magnet.trackers, &magnet.web_seeds, layers);
        let meta = Metainfo::from_bytes_any_version(&bytes).map_err(|e| {
            SessionError::NoMetadata(format!("the metadata peers sent is not valid: {e}"))
        })?;
        Ok::<_, SessionError>((bytes, meta))
    };
    let (mut bytes, mut meta) = torrent(&[])?;
    if !is_of(&meta, magnet) {
        return Err(SessionError::NoMetadata(
            "the metadata does not match the link's info-hash".into(),
        ));
    }
    if let Some(layers) = piece_layers(&meta, magnet, &fetched.v2_peers, &dialer).await? {
        (bytes, meta) = torrent(&layers)?;
    }
    let saved = match dir {
        Some(d) => Some(save(d, &meta.info.name, &bytes)?),
        None => None,
    };
    Ok(Resolved {
        meta,
        peers,
        saved,
        fetched: true,
    })
}

/// The piece layers a v2 or hybrid torrent's `info` lacks, from `peers` (`None`: it needs none).
/// Without them a v2-only torrent cannot be checked (an error); a hybrid is then checked by SHA-1,
/// and by SHA-256 only in files of at most one piece.
async fn piece_layers(
    meta: &Metainfo,
    magnet: &Magnet,
    peers: &[SocketAddr],
    dialer: &super::dial::Dialer,
) -> Result<Option<Vec<LayerEntry>>, SessionError> {
    if layers::Wanted::for_info(&meta.info).is_done() {
        return Ok(None);
    }
    let Some(v2) = meta.info_hash_v2 else {
        return Ok(None);
    };
    let hello = layers::Hello {
        info_hash: magnet.info_hash,
        v2_id: v2.truncated(),
        peer_id: crate::types::PeerId::generate(&mut rand::rng()),
        pieces: meta.info.lengths.piece_count(),
    };
    match layers::fetch(&meta.info, peers, dialer, hello).await {
        Ok(found) => Ok(Some(found)),
        Err(why) if meta.info.version() == MetaVersion::Hybrid => {
            tracing::warn!(
                "{why}: pieces are checked by SHA-1 (and SHA-256 where a file's root tells)"
            );
            Ok(None)
        }
        Err(why) => Err(SessionError::NoMetadata(why)),
    }
}

/// One file's piece layer, by its `pieces root`.
type LayerEntry = (crate::merkle::Hash, Vec<crate::merkle::Hash>);

/// An `x.pe` address: an IP as is, a host name resolved (its addresses, bounded by a timeout).
async fn resolve_peer(p: &PeerAddr) -> Vec<SocketAddr> {
    match p {
        PeerAddr::Ip(a) => vec![*a],
        PeerAddr::Host(host, port) => {
            let lookup = tokio::net::lookup_host((host.as_str(), *port));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(addrs)) => addrs.take(4).collect(),
                _ => {
                    tracing::debug!(host = %host, "x.pe host did not resolve");
                    Vec::new()
                }
            }
        }
    }
}

/// A `.torrent` in `dir` (at most [`MAX_SAVED_SCANNED`] looked at) whose info-hash is the link's.
fn saved(dir: &Path, magnet: &Magnet) -> Option<(std::path::PathBuf, Metainfo)> {
    let entries = std::fs::read_dir(dir).ok()?;
    let max = crate::bencode::Limits::TORRENT.max_len as u64;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "torrent"))
        .take(MAX_SAVED_SCANNED)
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() <= max))
        .find_map(|p| {
            let meta = Metainfo::from_bytes_any_version(&std::fs::read(&p).ok()?).ok()?;
            is_of(&meta, magnet).then_some((p, meta))
        })
}

/// Whether `meta` is the torrent `magnet` names: every hash the link gives is one `meta` computed
/// from its `info` (the SHA-1 of a v1 or hybrid torrent; the SHA-256 of a usable v2 side).
fn is_of(meta: &Metainfo, magnet: &Magnet) -> bool {
    let sha1 = (meta.info.version() != MetaVersion::V2).then_some(meta.info_hash);
    let v1 = magnet.ids.v1.is_none_or(|h| sha1 == Some(h));
    let v2 = magnet.ids.v2.is_none_or(|h| meta.info_hash_v2 == Some(h));
    v1 && v2
}

/// Writes `dir/<name>.torrent` atomically (a temporary file renamed), unless it exists already.
fn save(dir: &Path, name: &str, bytes: &[u8]) -> Result<std::path::PathBuf, SessionError> {
    let err = |e: std::io::Error| SessionError::Output {
        path: dir.display().to_string(),
        error: e,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let path = dir.join(format!("{name}.torrent"));
    if path.exists() {
        return Ok(path);
    }
    let tmp = dir.join(format!(".{name}.torrent.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(bytes: &[u8]) -> Metainfo {
        Metainfo::from_bytes_any_version(bytes).unwrap()
    }

    fn link(xts: &[String]) -> Magnet {
        Magnet::parse(&format!("magnet:?{}", xts.join("&"))).unwrap()
    }

    #[test]
    fn a_torrent_is_the_links_when_every_hash_the_link_names_is_its_own() {
        let hybrid = fixture(include_bytes!("../../tests/data/v2/hybrid-multi.torrent"));
        let v2_only = fixture(include_bytes!("../../tests/data/v2/v2-single.torrent"));
        let btih = |m: &Metainfo| format!("xt=urn:btih:{}", m.info_hash);
        let btmh = |m: &Metainfo| format!("xt=urn:btmh:1220{}", m.info_hash_v2.unwrap());
        let other = format!("xt=urn:btmh:1220{}", "ab".repeat(32));
        assert!(is_of(&hybrid, &link(&[btih(&hybrid)])));
        assert!(is_of(&hybrid, &link(&[btmh(&hybrid)])));
        assert!(is_of(&hybrid, &link(&[btih(&hybrid), btmh(&hybrid)])));
        assert!(!is_of(&hybrid, &link(&[btih(&hybrid), other.clone()])));
        assert!(!is_of(&hybrid, &link(&[btmh(&v2_only)])));
        assert!(is_of(&v2_only, &link(&[btmh(&v2_only)])));
        // A v2-only torrent's 20-byte id is its truncated SHA-256, not a SHA-1: no btih names it.
        assert!(!is_of(&v2_only, &link(&[btih(&v2_only)])));
        assert!(!is_of(&v2_only, &link(&[other])));
    }
}
