//! Which files of a torrent to download: `--only` and `--exclude` patterns ([`glob`]) and
//! `--select-file` indexes resolved against the file list, and what follows from it: the pieces we
//! want, and for each file whether it is stored in full, stored sparse because it shares a piece
//! with a selected file (only that piece's bytes are written), or not created at all. Pure.

pub mod glob;

use std::fmt;
use std::ops::RangeInclusive;

pub use glob::{Glob, GlobError};

use crate::bitfield::Bitfield;
use crate::metainfo::FileEntry;
use crate::types::Lengths;

/// Most ranges one `--select-file` list may hold.
pub const MAX_RANGES: usize = 4096;

/// What the user asked for. The default selects every file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    /// `--only`: files matching any of these are selected (with `indexes`, either selects).
    pub only: Vec<Glob>,
    /// `--exclude`: files matching any of these are left out, whatever else selected them.
    pub exclude: Vec<Glob>,
    /// `--select-file`: 1-based indexes, in the order `--info` lists the files.
    pub indexes: Vec<RangeInclusive<u32>>,
}

impl Spec {
    /// Whether this selects every file (no option given).
    pub fn is_all(&self) -> bool {
        self.only.is_empty() && self.exclude.is_empty() && self.indexes.is_empty()
    }
}

/// Parses a `--select-file` list: `1,3-5,9` (1-based, inclusive ranges, spaces allowed).
pub fn parse_indexes(list: &str) -> Result<Vec<RangeInclusive<u32>>, SelectError> {
    let bad = |why: &'static str| SelectError::BadIndexes {
        list: list.to_string(),
        why,
    };
    let mut out = Vec::new();
    for part in list.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(bad("an empty item"));
        }
        if out.len() >= MAX_RANGES {
            return Err(bad("more than 4096 items"));
        }
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (part, part),
        };
        let number = |s: &str| {
            s.parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| bad("indexes are whole numbers from 1"))
        };
        let (lo, hi) = (number(lo)?, number(hi)?);
        if hi < lo {
            return Err(bad("a range runs backwards"));
        }
        out.push(lo..=hi);
    }
    Ok(out)
}

/// What is done with one file of the torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Selected: created at its full size, pre-allocated, downloaded whole.
    Selected,
    /// Not selected, but it shares a piece with a selected file: created sparse (no pre-allocation)
    /// and only the shared pieces' bytes are written.
    Boundary,
    /// Not selected and sharing no piece with a selected file: never created, read nor written.
    Skipped,
    /// A BEP 47 pad file: never stored, whatever the selection.
    Pad,
}

impl Role {
    /// Every file selected: [`Role::Selected`], or [`Role::Pad`] for a pad file.
    pub fn every_file(files: &[FileEntry]) -> Vec<Role> {
        files
            .iter()
            .map(|f| {
                if f.attr.pad {
                    Role::Pad
                } else {
                    Role::Selected
                }
            })
            .collect()
    }
}

/// Why a selection was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectError {
    /// A `--select-file` list that does not parse.
    BadIndexes { list: String, why: &'static str },
    /// A `--select-file` index past the torrent's file count.
    NoSuchFile { index: u32, files: usize },
    /// The options leave no file (a zero-length one is a file) selected.
    Nothing,
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::BadIndexes { list, why } => {
                let list = crate::text::line(list);
                write!(f, "bad --select-file list '{list}': {why}")
            }
            SelectError::NoSuchFile { index, files } => write!(
                f,
                "--select-file {index}: the torrent has {files} files (see --info for their indexes)"
            ),
            SelectError::Nothing => f.write_str(
                "--only/--exclude/--select-file select no file of this torrent (see --info)",
            ),
        }
    }
}

impl std::error::Error for SelectError {}

/// A resolved selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    roles: Vec<Role>,
    wanted: Bitfield,
    /// Pieces that touch no skipped file: the only ones our storage can hold.
    storable: Bitfield,
    selected_bytes: u64,
}

impl Selection {
    /// Applies `spec` to `files` (in torrent order, with offsets) cut into pieces by `lengths`.
    pub fn resolve(
        spec: &Spec,
        files: &[FileEntry],
        lengths: Lengths,
    ) -> Result<Selection, SelectError> {
        for r in &spec.indexes {
            if *r.end() as usize > files.len() {
                return Err(SelectError::NoSuchFile {
                    index: (*r.start()).max(files.len() as u32 + 1),
                    files: files.len(),
                });
            }
        }
        let chosen = |i: usize, f: &FileEntry| {
            let path = f.display_path();
            let number = i as u32 + 1;
            let picked = (spec.only.is_empty() && spec.indexes.is_empty())
                || spec.only.iter().any(|g| g.matches(&path))
                || spec.indexes.iter().any(|r| r.contains(&number));
            picked && !spec.exclude.iter().any(|g| g.matches(&path))
        };
        let mut roles: Vec<Role> = files
            .iter()
            .enumerate()
            .map(|(i, f)| match (f.attr.pad, chosen(i, f)) {
                (true, _) => Role::Pad,
                (false, true) => Role::Selected,
                (false, false) => Role::Skipped,
            })
            .collect();
        if !roles.contains(&Role::Selected) {
            return Err(SelectError::Nothing);
        }
        let n = lengths.piece_count();
        let mut wanted = Bitfield::new(n);
        let mut selected_bytes = 0;
        for (f, _) in files
            .iter()
            .zip(&roles)
            .filter(|(_, r)| **r == Role::Selected)
        {
            selected_bytes += f.length;
            for p in pieces_of(f, lengths) {
                wanted.set(p);
            }
        }
        let mut storable = Bitfield::full(n);
        for (f, role) in files.iter().zip(roles.iter_mut()) {
            if *role != Role::Skipped {
                continue;
            }
            if pieces_of(f, lengths).any(|p| wanted.get(p)) {
                *role = Role::Boundary;
            } else {
                for p in pieces_of(f, lengths) {
                    storable.clear(p);
                }
            }
        }
        Ok(Selection {
            roles,
            wanted,
            storable,
            selected_bytes,
        })
    }

    /// Every file selected, every piece wanted.
    pub fn all(files: &[FileEntry], lengths: Lengths) -> Selection {
        match Selection::resolve(&Spec::default(), files, lengths) {
            Ok(s) => s,
            // Only pad files (or none): nothing to select, nothing to skip.
            Err(_) => Selection {
                roles: Role::every_file(files),
                wanted: Bitfield::full(lengths.piece_count()),
                storable: Bitfield::full(lengths.piece_count()),
                selected_bytes: files.iter().filter(|f| !f.attr.pad).map(|f| f.length).sum(),
            },
        }
    }

    /// A selection of the `wanted` pieces of a torrent with no file list (in-process tests).
    #[cfg(test)]
    pub(crate) fn of_pieces(wanted: Bitfield) -> Selection {
        Selection {
            roles: Vec::new(),
            storable: Bitfield::full(wanted.len()),
            selected_bytes: 0,
            wanted,
        }
    }

    /// What is done with each file, in torrent order.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The pieces to download: every piece holding a byte of a selected file.
    pub fn wanted(&self) -> &Bitfield {
        &self.wanted
    }

    /// Pieces whose every byte lies in a file we store (or a pad file): a piece touching a skipped
    /// file can be neither re-checked nor served.
    pub fn storable(&self) -> &Bitfield {
        &self.storable
    }

    /// Bytes in the wanted pieces: what the download fetches and verifies.
    pub fn wanted_bytes(&self, lengths: Lengths) -> u64 {
        self.wanted
            .ones()
            .filter_map(|i| lengths.piece(i))
            .map(|p| u64::from(lengths.piece_len(p)))
            .sum()
    }

    /// Bytes in the selected files.
    pub fn selected_bytes(&self) -> u64 {
        self.selected_bytes
    }

    /// Selected files (zero-length ones included), pad files not counted.
    pub fn selected_count(&self) -> usize {
        self.roles.iter().filter(|r| **r == Role::Selected).count()
    }

    /// Files other than pad files.
    pub fn file_count(&self) -> usize {
        self.roles.iter().filter(|r| **r != Role::Pad).count()
    }

    /// Whether every non-pad file is selected.
    pub fn is_all(&self) -> bool {
        self.roles
            .iter()
            .all(|r| matches!(r, Role::Selected | Role::Pad))
    }
}

/// The pieces holding a byte of `file` (none for a zero-length file).
pub fn pieces_of(file: &FileEntry, lengths: Lengths) -> std::ops::Range<u32> {
    if file.length == 0 {
        return 0..0;
    }
    let pl = u64::from(lengths.piece_length());
    let last = (file.offset + file.length).div_ceil(pl);
    (file.offset / pl) as u32..last.min(u64::from(lengths.piece_count())) as u32
}

#[cfg(test)]
mod tests;
