//! The BEP 52 `file tree`: nested dictionaries of path components down to `""` leaves that hold each
//! file's `length` and `pieces root`, read in order under the same path rules as v1 `files`; and the
//! piece-aligned byte stream it implies (BEP 47 pad files between files, laid out as libtorrent does).

use super::files::{self, FileAttr, FileEntry};
use super::{wrong_type, MetainfoError};
use crate::bencode::Node;
use crate::merkle::{Hash, ZERO};

/// One file of a `file tree`, in tree order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TreeFile {
    /// Path components below the torrent's directory (for a single-file torrent, its one name).
    pub path: Vec<String>,
    /// Size in bytes (0 for a symbolic link).
    pub length: u64,
    /// BEP 47 attributes (never `pad`: a tree may not hold pad files).
    pub attr: FileAttr,
    /// `pieces root`: present exactly for non-empty files.
    pub root: Option<Hash>,
}

/// A `file tree`, read: its files in order, and whether it is a single-file torrent (one file at the
/// top and no v1 `files` list, as libtorrent decides; its path is then its key, not `name`).
#[derive(Debug)]
pub(super) struct Tree {
    pub files: Vec<TreeFile>,
    pub single: bool,
}

/// Reads `info.file tree`. `has_files`: whether `info` also has a v1 `files` list.
pub(super) fn file_tree(tree: Node<'_, '_>, has_files: bool) -> Result<Tree, MetainfoError> {
    let entries = tree
        .as_dict()
        .ok_or_else(|| wrong_type("info.file tree", "a dictionary", tree))?;
    if entries.iter().any(|(k, _)| k.is_empty()) {
        return Err(bad(
            "info.file tree",
            "is itself a file; it must be a directory",
        ));
    }
    let single =
        !has_files && entries.len() == 1 && leaf(entries[0].1, "info.file tree")?.is_some();
    let mut files = Vec::new();
    walk(entries, &mut Vec::new(), &mut files)?;
    if files.is_empty() {
        return Err(bad("info.file tree", "holds no file"));
    }
    let v1_shaped: Vec<FileEntry> = files.iter().map(|f| entry(f, 0)).collect();
    files::check_unique(&v1_shaped)?;
    Ok(Tree { files, single })
}

/// Appends the files below a directory's `entries` (in key order, which is the written order:
/// the caller refused unsorted keys) to `out`.
fn walk(
    entries: Vec<(&[u8], Node<'_, '_>)>,
    path: &mut Vec<String>,
    out: &mut Vec<TreeFile>,
) -> Result<(), MetainfoError> {
    for (i, (key, child)) in entries.into_iter().enumerate() {
        let here = display(path);
        path.push(files::component(key, &format!("{here}/[{i}]"))?);
        files::check_path_len(path, &display(path))?;
        match leaf(child, &display(path))? {
            Some(props) => out.push(file(props, path)?),
            None => {
                let inner = child
                    .as_dict()
                    .ok_or_else(|| wrong_type(&display(path), "a dictionary", child))?;
                walk(inner, path, out)?;
            }
        }
        path.pop();
    }
    Ok(())
}

/// The properties of a file if `node` is one (a dictionary whose only key is `""`), `None` for a
/// directory. A `""` key beside others is refused: BEP 52 gives a file no siblings.
fn leaf<'n, 'a>(node: Node<'n, 'a>, key: &str) -> Result<Option<Node<'n, 'a>>, MetainfoError> {
    let Some(props) = node.get(b"") else {
        return Ok(None);
    };
    if node.as_dict().map_or(0, |d| d.len()) != 1 {
        return Err(bad(key, "has a file entry (key \"\") beside other keys"));
    }
    if !props.is_dict() {
        return Err(wrong_type(key, "a dictionary of file properties", props));
    }
    Ok(Some(props))
}

/// One file's properties: `length`, `attr`, and `pieces root` for a non-empty file.
fn file(props: Node<'_, '_>, path: &[String]) -> Result<TreeFile, MetainfoError> {
    let key = display(path);
    let attr = files::attr(props);
    if attr.pad {
        return Err(bad(
            &key,
            "is a pad file (attr `p`), which a v2 file tree may not hold",
        ));
    }
    // A symbolic link has no payload of its own (libtorrent reads its length as 0).
    let length = if attr.symlink {
        0
    } else {
        files::length(props, &format!("{key}."))?
    };
    let root = if length == 0 {
        // An empty file has no root; one given anyway is ignored, as libtorrent does.
        None
    } else {
        Some(pieces_root(props, &key)?)
    };
    Ok(TreeFile {
        path: path.to_vec(),
        length,
        attr,
        root,
    })
}

fn pieces_root(props: Node<'_, '_>, key: &str) -> Result<Hash, MetainfoError> {
    let key = format!("{key}.pieces root");
    let node = props
        .get(b"pieces root")
        .ok_or_else(|| MetainfoError::Missing(key.clone()))?;
    let bytes = node
        .as_bytes()
        .ok_or_else(|| wrong_type(&key, "a byte string", node))?;
    let root: Hash = bytes
        .try_into()
        .map_err(|_| bad(&key, "is not a 32-byte SHA-256 hash"))?;
    if root == ZERO {
        return Err(bad(&key, "is all zeros"));
    }
    Ok(root)
}

/// The piece-aligned stream of `files`: each file after the first starts on a piece boundary, a
/// pad file (`.pad/<length>`, BEP 47) filling any gap, with no padding after the last, as libtorrent
/// lays out the v1 side of a hybrid. Returns the entries and each one's `pieces root`.
pub(super) fn aligned(
    files: &[TreeFile],
    piece_length: u32,
) -> Result<(Vec<FileEntry>, Vec<Option<Hash>>), MetainfoError> {
    let piece = u64::from(piece_length);
    let mut entries = Vec::with_capacity(files.len() * 2);
    let mut roots = Vec::with_capacity(files.len() * 2);
    let mut offset = 0u64;
    for (i, f) in files.iter().enumerate() {
        let gap = (piece - offset % piece) % piece;
        if i > 0 && gap > 0 {
            entries.push(FileEntry {
                path: vec![".pad".into(), gap.to_string()],
                length: gap,
                offset,
                attr: FileAttr {
                    pad: true,
                    ..FileAttr::default()
                },
            });
            roots.push(None);
            offset = offset.checked_add(gap).ok_or(MetainfoError::Overflow)?;
        }
        entries.push(entry(f, offset));
        roots.push(f.root);
        offset = offset
            .checked_add(f.length)
            .ok_or(MetainfoError::Overflow)?;
    }
    Ok((entries, roots))
}

fn entry(f: &TreeFile, offset: u64) -> FileEntry {
    FileEntry {
        path: f.path.clone(),
        length: f.length,
        offset,
        attr: f.attr,
    }
}

/// `info.file tree/a/b`, for messages (components are already sanitized).
fn display(path: &[String]) -> String {
    let mut out = String::from("info.file tree");
    for c in path {
        out.push('/');
        out.push_str(c);
    }
    out
}

fn bad(key: &str, why: &'static str) -> MetainfoError {
    MetainfoError::BadFileTree {
        key: key.to_string(),
        why,
    }
}
#[cfg(test)]
mod tests;
