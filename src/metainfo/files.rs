//! The file list of an `info` dictionary: lengths, offsets, BEP 47 attributes, and the path rules that
//! keep every file inside the output directory (no `..`, no separators, no duplicates).

use std::collections::HashSet;

use super::{required_int, wrong_type, MetainfoError};
use crate::bencode::Node;

/// Longest path component accepted: the usual file-system limit (`NAME_MAX`).
pub const MAX_COMPONENT_LEN: usize = 255;

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

/// The single file of a torrent without `files`.
pub(super) fn single_file(info: Node<'_, '_>) -> Result<FileEntry, MetainfoError> {
    let name = super::prefer_utf8(info, "name")
        .ok_or_else(|| MetainfoError::Missing("info.name".into()))?;
    Ok(FileEntry {
        path: vec![path_component(name, "info.name")?],
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

/// One path component: a byte string that is not empty, `.` or `..`, and has no separator or NUL.
pub(super) fn path_component(node: Node<'_, '_>, key: &str) -> Result<String, MetainfoError> {
    let bytes = node
        .as_bytes()
        .ok_or_else(|| wrong_type(key, "a byte string", node))?;
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
    if text.len() > MAX_COMPONENT_LEN {
        return Err(MetainfoError::BadPath {
            key: key.into(),
            why: "is longer than 255 bytes, the file-system limit",
        });
    }
    Ok(text)
}

fn length(dict: Node<'_, '_>, prefix: &str) -> Result<u64, MetainfoError> {
    let value = required_int(dict, "length", prefix)?;
    u64::try_from(value).map_err(|_| MetainfoError::BadNumber {
        key: format!("{prefix}length"),
        value,
        why: "a file size cannot be negative",
    })
}

fn attr(dict: Node<'_, '_>) -> FileAttr {
    dict.get(b"attr")
        .and_then(|n| n.as_bytes())
        .map(FileAttr::parse)
        .unwrap_or_default()
}

/// No two real files on one path, and no file where another needs a directory. Pad files are exempt:
/// they are never written, and hybrid torrents give same-sized ones the same `.pad/N` path.
fn check_unique(files: &[FileEntry]) -> Result<(), MetainfoError> {
    let mut file_paths: HashSet<&[String]> = HashSet::new();
    let mut dir_paths: HashSet<&[String]> = HashSet::new();
    for file in files.iter().filter(|f| !f.attr.pad) {
        let path = file.path.as_slice();
        if file_paths.contains(path) || dir_paths.contains(path) {
            return Err(MetainfoError::DuplicatePath(path.join("/")));
        }
        for end in 1..path.len() {
            let dir = &path[..end];
            if file_paths.contains(dir) {
                return Err(MetainfoError::DuplicatePath(dir.join("/")));
            }
            dir_paths.insert(dir);
        }
        file_paths.insert(path);
    }
    Ok(())
}
