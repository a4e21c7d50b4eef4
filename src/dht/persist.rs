//! The routing table between runs: our node id and the nodes we knew, as a small bencoded file in
//! the user's state directory (`$XDG_STATE_HOME/pixtorrent/dht.dat`, else
//! `~/.local/state/pixtorrent/dht.dat`), written atomically (a temporary file renamed). The next
//! start keeps its id and bootstraps from those nodes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::id::NodeId;
use super::krpc::{compact_addr, encode_addr};
use crate::bencode::{decode, Limits, Value};

/// Most nodes saved (a full table is a few hundred).
pub const MAX_SAVED: usize = 1000;

/// Where the state file lives: `$XDG_STATE_HOME/pixtorrent/dht.dat`, else
/// `$HOME/.local/state/pixtorrent/dht.dat`; `None` without either.
pub fn default_path() -> Option<PathBuf> {
    Some(crate::paths::state_dir()?.join("dht.dat"))
}

/// What was saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Our node id.
    pub id: NodeId,
    /// Known nodes.
    pub nodes: Vec<(NodeId, SocketAddr)>,
    /// The node ran on a local DHT (`--dht-bootstrap`): its nodes may be loopback or private, and
    /// a restart bootstraps from them alone.
    pub local: bool,
}

/// The file's bytes.
pub fn encode(saved: &Saved) -> Vec<u8> {
    let nodes = saved
        .nodes
        .iter()
        .take(MAX_SAVED)
        .map(|(id, addr)| {
            let mut b = id.0.to_vec();
            b.extend_from_slice(&encode_addr(addr));
            Value::Bytes(b)
        })
        .collect();
    Value::dict([
        ("id", Value::Bytes(saved.id.0.to_vec())),
        ("local", Value::Int(i64::from(saved.local))),
        ("nodes", Value::List(nodes)),
    ])
    .encode()
}

/// Reads the file's bytes; `None` if they are not ours (a damaged file is ignored, not fatal).
pub fn parse(bytes: &[u8]) -> Option<Saved> {
    let limits = Limits {
        max_len: 64 * 1024,
        max_depth: 4,
        max_items: 4 * MAX_SAVED,
        max_tree_bytes: 4 * 1024 * 1024,
    };
    let doc = decode(bytes, limits).ok()?;
    let root = doc.root();
    let id: [u8; 20] = root.get(b"id")?.as_bytes()?.try_into().ok()?;
    let nodes = root
        .get(b"nodes")?
        .as_list()?
        .take(MAX_SAVED)
        .filter_map(|n| {
            let b = n.as_bytes()?;
            if b.len() < 26 {
                return None;
            }
            let id: [u8; 20] = b[..20].try_into().ok()?;
            Some((NodeId(id), compact_addr(&b[20..])?))
        })
        .collect();
    let local = root.get(b"local").and_then(|n| n.as_int()) == Some(1);
    Some(Saved {
        id: NodeId(id),
        nodes,
        local,
    })
}

/// Loads `path`; `None` when absent or not ours.
pub fn load(path: &Path) -> Option<Saved> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > 64 * 1024 {
        return None;
    }
    parse(&std::fs::read(path).ok()?)
}

/// Writes `saved` to `path` atomically, creating the directory.
pub fn save(path: &Path, saved: &Saved) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, encode(saved))?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_round_trips_and_junk_is_ignored() {
        let saved = Saved {
            id: NodeId([3; 20]),
            nodes: vec![
                (NodeId([1; 20]), "127.0.0.1:6881".parse().unwrap()),
                (NodeId([2; 20]), "[::1]:6882".parse().unwrap()),
            ],
            local: true,
        };
        assert_eq!(parse(&encode(&saved)), Some(saved.clone()));
        assert_eq!(parse(b"garbage"), None);
        assert_eq!(parse(b"d2:id3:abce"), None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/pixtorrent/dht.dat");
        save(&path, &saved).unwrap();
        assert_eq!(load(&path), Some(saved));
        assert!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count() == 1,
            "no temp file left"
        );
    }
}
