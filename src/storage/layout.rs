//! Where each piece's bytes live: the spans of files a piece covers, worked out once from the file
//! list. Pure arithmetic; pad files are marked so storage neither creates nor writes them.

use crate::metainfo::Info;
use crate::types::{Lengths, PieceIndex};

/// One file as storage sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSlot {
    /// Offset of its first byte in the torrent's byte stream.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// A BEP 47 pad file: zeros, never stored.
    pub pad: bool,
}

/// The part of one piece that lies in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Index into the file list.
    pub file: usize,
    /// Offset inside that file.
    pub file_offset: u64,
    /// Offset inside the piece.
    pub piece_offset: u32,
    /// Bytes.
    pub len: u32,
}

/// Piece→file mapping of one torrent.
#[derive(Debug, Clone)]
pub struct Layout {
    lengths: Lengths,
    files: Vec<FileSlot>,
    /// For each piece, the first file holding one of its bytes.
    first_file: Vec<u32>,
}

impl Layout {
    /// The layout of a torrent's `info`.
    pub fn new(info: &Info) -> Layout {
        let files = info
            .files
            .iter()
            .map(|f| FileSlot {
                offset: f.offset,
                length: f.length,
                pad: f.attr.pad,
            })
            .collect();
        Layout::from_files(info.lengths, files)
    }

    /// The layout of `files` (contiguous, in torrent order, summing to `lengths.total()`).
    pub fn from_files(lengths: Lengths, files: Vec<FileSlot>) -> Layout {
        let mut first_file = Vec::with_capacity(lengths.piece_count() as usize);
        let mut f = 0usize;
        for piece in lengths.pieces() {
            let start = lengths.piece_offset(piece);
            // Skip files that end at or before the piece's start (zero-length ones included).
            while f + 1 < files.len() && files[f].offset + files[f].length <= start {
                f += 1;
            }
            first_file.push(f as u32);
        }
        Layout {
            lengths,
            files,
            first_file,
        }
    }

    /// The size arithmetic.
    pub fn lengths(&self) -> Lengths {
        self.lengths
    }

    /// The files.
    pub fn files(&self) -> &[FileSlot] {
        &self.files
    }

    /// The non-empty spans of `piece`, in order; their lengths sum to the piece length.
    pub fn spans(&self, piece: PieceIndex) -> impl Iterator<Item = Span> + '_ {
        let start = self.lengths.piece_offset(piece);
        let end = start + u64::from(self.lengths.piece_len(piece));
        let first = self.first_file[piece.get() as usize] as usize;
        self.files[first..]
            .iter()
            .enumerate()
            .take_while(move |(_, f)| f.offset < end)
            .filter_map(move |(k, f)| {
                let lo = f.offset.max(start);
                let hi = (f.offset + f.length).min(end);
                (hi > lo).then(|| Span {
                    file: first + k,
                    file_offset: lo - f.offset,
                    piece_offset: (lo - start) as u32,
                    len: (hi - lo) as u32,
                })
            })
    }

    /// The pieces that touch file `file` (none for an empty file).
    pub fn pieces_of_file(&self, file: usize) -> std::ops::Range<u32> {
        let f = &self.files[file];
        if f.length == 0 {
            return 0..0;
        }
        let pl = u64::from(self.lengths.piece_length());
        (f.offset / pl) as u32..(f.offset + f.length).div_ceil(pl) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(piece_len: u32, sizes: &[u64]) -> Layout {
        let mut offset = 0;
        let files = sizes
            .iter()
            .map(|&length| {
                let f = FileSlot {
                    offset,
                    length,
                    pad: false,
                };
                offset += length;
                f
            })
            .collect();
        Layout::from_files(Lengths::new(offset, piece_len).unwrap(), files)
    }

    fn spans(l: &Layout, piece: u32) -> Vec<(usize, u64, u32, u32)> {
        l.spans(l.lengths().piece(piece).unwrap())
            .map(|s| (s.file, s.file_offset, s.piece_offset, s.len))
            .collect()
    }

    #[test]
    fn a_piece_spanning_three_files() {
        // Files 10, 3, 20 bytes; pieces of 16: piece 0 = file0[0..10] + file1[0..3] + file2[0..3].
        let l = layout(16, &[10, 3, 20]);
        assert_eq!(
            spans(&l, 0),
            vec![(0, 0, 0, 10), (1, 0, 10, 3), (2, 0, 13, 3)]
        );
        assert_eq!(spans(&l, 1), vec![(2, 3, 0, 16)]);
        // Last piece: 33 - 32 = 1 byte.
        assert_eq!(spans(&l, 2), vec![(2, 19, 0, 1)]);
    }

    #[test]
    fn zero_length_files_get_no_span() {
        let l = layout(8, &[0, 5, 0, 0, 5, 0]);
        assert_eq!(spans(&l, 0), vec![(1, 0, 0, 5), (4, 0, 5, 3)]);
        assert_eq!(spans(&l, 1), vec![(4, 3, 0, 2)]);
        assert_eq!(l.pieces_of_file(0), 0..0);
        assert_eq!(l.pieces_of_file(4), 0..2);
        assert_eq!(l.pieces_of_file(5), 0..0);
    }

    #[test]
    fn piece_boundary_on_a_file_boundary() {
        let l = layout(4, &[4, 4, 1]);
        assert_eq!(spans(&l, 0), vec![(0, 0, 0, 4)]);
        assert_eq!(spans(&l, 1), vec![(1, 0, 0, 4)]);
        assert_eq!(spans(&l, 2), vec![(2, 0, 0, 1)]);
        assert_eq!(l.pieces_of_file(1), 1..2);
    }

    #[test]
    fn spans_always_cover_each_piece_exactly() {
        let sizes = [0, 1, 16384, 0, 524_289, 3, 0, 1_000_000, 7, 0];
        for piece_len in [1, 7, 16384, 32768, 524_288] {
            let l = layout(piece_len, &sizes);
            let mut covered = 0u64;
            for p in l.lengths().pieces() {
                let mut at = 0;
                for s in l.spans(p) {
                    assert_eq!(s.piece_offset, at);
                    assert!(s.file_offset + u64::from(s.len) <= l.files()[s.file].length);
                    assert_eq!(
                        l.files()[s.file].offset + s.file_offset,
                        l.lengths().piece_offset(p) + u64::from(s.piece_offset)
                    );
                    at += s.len;
                }
                assert_eq!(at, l.lengths().piece_len(p));
                covered += u64::from(at);
            }
            assert_eq!(covered, l.lengths().total());
        }
    }
}
