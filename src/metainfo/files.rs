//! The file list of an `info` dictionary: lengths, offsets, BEP 47 attributes, and the path rules that
//! keep every file inside the output directory (no `..`, no separators, no duplicates).

use std::collections::HashMap;

use super::{required_int, wrong_type, MetainfoError};
use crate::bencode::Node;
use crate::text::is_unprintable;

/// Longest path component accepted: the usual file-system limit (`NAME_MAX`).
pub const MAX_COMPONENT_LEN: usize = 255;
/// Longest path of one file inside the torrent, separators included: Linux's `PATH_MAX`.
pub const MAX_PATH_LEN: usize = 4096;

/// BEP 47 file attributes (the `attr` string).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileAttr {
    /// `p`: padding, never written to disk nor requested from web seeds.
    pub pad: bool,
    /// `x`: executable.
    pub executable: bool,
    /// `h`: hidden.
    pub hidden: bool,
    /// `l`: symbolic link (we write its bytes as a plain file; we never create links).
    pub symlink: bool,
}

impl FileAttr {
    fn parse(attr: &[u8]) -> FileAttr {
        FileAttr {
            pad: attr.contains(&b'p'),
            executable: attr.contains(&b'x'),
            hidden: attr.contains(&b'h'),
            symlink: attr.contains(&b'l'),
        }
    }
}

/// One file of the torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components below the torrent's directory; for a single-file torrent, just the name.
    pub path: Vec<String>,
    /// Size in bytes (may be 0).
    pub length: u64,
    /// Offset of the file's first byte in the torrent's byte stream.
    pub offset: u64,
    /// BEP 47 attributes.
    pub attr: FileAttr,
}

impl FileEntry {
    /// The path joined with `/`, for display.
    pub fn display_path(&self) -> String {
        self.path.join("/")
    }
}

/// The single file of a torrent without `files`; `name` is the already validated `info.name`.
pub(super) fn single_file(info: Node<'_, '_>, name: &str) -> Result<FileEntry, MetainfoError> {
    Ok(FileEntry {
        path: vec![name.to_string()],
        length: length(info, "info.")?,
        offset: 0,
        attr: attr(info),
    })
}

/// The `files` list, validated, with offsets.
pub(super) fn file_list(list: Node<'_, '_>) -> Result<Vec<FileEntry>, MetainfoError> {
    let entries = list
        .as_list()
        .ok_or_else(|| wrong_type("info.files", "a list", list))?;
    let mut files = Vec::new();
    let mut offset = 0u64;
    for (i, entry) in entries.enumerate() {
        let key = format!("info.files[{i}]");
        if !entry.is_dict() {
            return Err(wrong_type(&key, "a dictionary", entry));
        }
        let length = length(entry, &format!("{key}."))?;
        let path_node = super::prefer_utf8(entry, "path")
            .ok_or_else(|| MetainfoError::Missing(format!("{key}.path")))?;
        let components = path_node
            .as_list()
            .ok_or_else(|| wrong_type(&format!("{key}.path"), "a list", path_node))?;
        let path = components
            .enumerate()
            .map(|(j, c)| path_component(c, &format!("{key}.path[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        if path.is_empty() {
            return Err(MetainfoError::BadPath {
                key: format!("{key}.path"),
                why: "is an empty list",
            });
        }
        check_path_len(&path, &format!("{key}.path"))?;
        files.push(FileEntry {
            path,
            length,
            offset,
            attr: attr(entry),
        });
        offset = offset.checked_add(length).ok_or(MetainfoError::Overflow)?;
    }
    check_unique(&files)?;
    Ok(files)
}

/// One path component: a byte string that is not empty, `.` or `..`, and has no separator, NUL, other
/// control character (terminal escapes) or bidirectional override (names that display reversed).
pub(super) fn path_component(node: Node<'_, '_>, key: &str) -> Result<String, MetainfoError> {
    let bytes = node
        .as_bytes()
        .ok_or_else(|| wrong_type(key, "a byte string", node))?;
    component(bytes, key)
}

/// [`path_component`] of raw bytes (a v2 `file tree` key).
pub(super) fn component(bytes: &[u8], key: &str) -> Result<String, MetainfoError> {
    let why = if bytes.is_empty() {
        Some("is empty")
    } else if bytes == b"." || bytes == b".." {
        Some("is `.` or `..`")
    } else if bytes.contains(&b'/') || bytes.contains(&b'\\') {
        Some("contains a path separator (`/` or `\\`)")
    } else if bytes.contains(&0) {
        Some("contains a NUL byte")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(MetainfoError::BadPath {
            key: key.into(),
            why,
        });
    }
    let text = String::from_utf8_lossy(bytes).into_owned();
    if text.chars().any(is_unprintable) {
        return Err(MetainfoError::BadPath {
            key: key.into(),
            why: "contains a control character",
        });
    }
    if text.len() > MAX_COMPONENT_LEN {
        return Err(MetainfoError::BadPath {
            key: key.into(),
            why: "is longer than 255 bytes, the file-system limit",
        });
    }
    Ok(text)
}

/// A whole path (components joined with `/`) within [`MAX_PATH_LEN`].
pub(super) fn check_path_len(path: &[String], key: &str) -> Result<(), MetainfoError> {
    if path.iter().map(|c| c.len() + 1).sum::<usize>() > MAX_PATH_LEN + 1 {
        return Err(MetainfoError::BadPath {
            key: key.to_string(),
            why: "is longer than 4096 bytes, the file-system limit",
        });
    }
    Ok(())
}

pub(super) fn length(dict: Node<'_, '_>, prefix: &str) -> Result<u64, MetainfoError> {
    let value = required_int(dict, "length", prefix)?;
    u64::try_from(value).map_err(|_| MetainfoError::BadNumber {
        key: format!("{prefix}length"),
        value,
        why: "a file size cannot be negative",
    })
}

pub(super) fn attr(dict: Node<'_, '_>) -> FileAttr {
    dict.get(b"attr")
        .and_then(|n| n.as_bytes())
        .map(FileAttr::parse)
        .unwrap_or_default()
}

/// No two real files on one path, and no file where another needs a directory. Pad files are exempt:
/// they are never written, and hybrid torrents give same-sized ones the same `.pad/N` path. Linear in the
/// number of path components: each path walks a tree of (parent node, component) -> node.
pub(super) fn check_unique(files: &[FileEntry]) -> Result<(), MetainfoError> {
    const ROOT: usize = 0;
    let mut children: HashMap<(usize, &str), usize> = HashMap::new();
    let mut is_file: Vec<bool> = vec![false]; // per node; node 0 is the torrent's directory
    for file in files.iter().filter(|f| !f.attr.pad) {
        let mut node = ROOT;
        for (depth, component) in file.path.iter().enumerate() {
            let last = depth + 1 == file.path.len();
            node = match children.get(&(node, component.as_str())) {
                // Something is already here: a second file on this path, a file where a directory is
                // needed, or a directory where this file should go.
                Some(&existing) if last || is_file[existing] => {
                    return Err(MetainfoError::DuplicatePath(file.path[..=depth].join("/")));
                }
                Some(&existing) => existing,
                None => {
                    let id = is_file.len();
                    is_file.push(last);
                    children.insert((node, component.as_str()), id);
                    id
                }
            };
        }
    }
    Ok(())
}
