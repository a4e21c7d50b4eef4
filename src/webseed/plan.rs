//! From block reservations to HTTP requests and back: blocks coalesced into contiguous runs of the
//! torrent's byte stream, a run split into per-file ranges (pad files become zeros, never requested),
//! and the [`Assembler`] that cuts the streamed response bytes back into blocks. Pure.

use std::collections::VecDeque;

use crate::metainfo::FileEntry;
use crate::types::{BlockRef, Lengths};

/// Contiguous blocks: one stretch of the torrent's byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Offset of the first byte in the torrent.
    pub start: u64,
    /// Bytes.
    pub len: u64,
    /// The blocks, in order.
    pub blocks: Vec<BlockRef>,
}

/// The blocks in runs of adjacent bytes, in byte order.
pub fn runs(lengths: Lengths, blocks: &[BlockRef]) -> Vec<Run> {
    let mut sorted = blocks.to_vec();
    sorted.sort_by_key(|b| (b.piece.get(), b.offset));
    sorted.dedup();
    let mut out: Vec<Run> = Vec::new();
    for b in sorted {
        let at = lengths.piece_offset(b.piece) + u64::from(b.offset);
        match out.last_mut() {
            Some(r) if r.start + r.len == at => {
                r.len += u64::from(b.len);
                r.blocks.push(b);
            }
            _ => out.push(Run {
                start: at,
                len: u64::from(b.len),
                blocks: vec![b],
            }),
        }
    }
    out
}

/// The part of a run inside one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index into the file list.
    pub file: usize,
    /// First byte inside the file.
    pub offset: u64,
    /// Bytes.
    pub len: u64,
    /// A pad file: zeros, not fetched.
    pub pad: bool,
}

/// The non-empty per-file pieces of `start..start + len`, in order.
pub fn segments(files: &[FileEntry], start: u64, len: u64) -> Vec<Segment> {
    let end = start + len;
    // Files are in offset order; skip those that end before `start` with a binary search.
    let first = files.partition_point(|f| f.offset + f.length <= start);
    files[first..]
        .iter()
        .enumerate()
        .take_while(|(_, f)| f.offset < end)
        .filter_map(|(k, f)| {
            let lo = f.offset.max(start);
            let hi = (f.offset + f.length).min(end);
            (hi > lo).then(|| Segment {
                file: first + k,
                offset: lo - f.offset,
                len: hi - lo,
                pad: f.attr.pad,
            })
        })
        .collect()
}

/// Cuts a stream of bytes back into the blocks of a run.
#[derive(Debug)]
pub struct Assembler {
    blocks: VecDeque<BlockRef>,
    partial: Vec<u8>,
}

impl Assembler {
    /// Expects the bytes of `blocks`, in order.
    pub fn new(blocks: &[BlockRef]) -> Assembler {
        Assembler {
            blocks: blocks.iter().copied().collect(),
            partial: Vec::new(),
        }
    }

    /// Takes the next bytes of the stream; calls `done` with every block they complete. Bytes past the
    /// last block are ignored; returns how many were used.
    pub fn feed(&mut self, mut data: &[u8], mut done: impl FnMut(BlockRef, &[u8])) -> usize {
        let mut used = 0;
        while let (Some(&b), false) = (self.blocks.front(), data.is_empty()) {
            let want = b.len as usize - self.partial.len();
            let take = want.min(data.len());
            if self.partial.is_empty() && take == want {
                // The whole block is in this chunk: no copy here.
                done(b, &data[..take]);
            } else {
                self.partial.extend_from_slice(&data[..take]);
                if take == want {
                    done(b, &self.partial);
                    self.partial.clear();
                }
            }
            data = &data[take..];
            used += take;
            if take == want {
                self.blocks.pop_front();
            }
        }
        used
    }

    /// The blocks not yet complete (to be returned to the picker when a request fails).
    pub fn pending(&self) -> impl Iterator<Item = BlockRef> + '_ {
        self.blocks.iter().copied()
    }

    /// Whether every block is complete.
    pub fn is_done(&self) -> bool {
        self.blocks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::FileAttr;
    use crate::types::BLOCK_LEN;

    const B: u64 = BLOCK_LEN as u64;

    fn lengths() -> Lengths {
        // 4 pieces of 2 blocks, the last one 1.5 blocks.
        Lengths::new(7 * B + B / 2, 2 * BLOCK_LEN).unwrap()
    }

    fn block(l: Lengths, piece: u32, i: u32) -> BlockRef {
        l.block(l.piece(piece).unwrap(), i).unwrap()
    }

    fn files(sizes: &[(u64, bool)]) -> Vec<FileEntry> {
        let mut offset = 0;
        sizes
            .iter()
            .enumerate()
            .map(|(i, &(length, pad))| {
                let f = FileEntry {
                    path: vec![format!("f{i}")],
                    length,
                    offset,
                    attr: FileAttr {
                        pad,
                        ..Default::default()
                    },
                };
                offset += length;
                f
            })
            .collect()
    }

    #[test]
    fn blocks_coalesce_into_runs_across_pieces() {
        let l = lengths();
        let blocks = [
            block(l, 2, 0),
            block(l, 0, 1),
            block(l, 1, 0),
            block(l, 3, 1),
            block(l, 1, 1),
            block(l, 1, 0),
        ];
        let r = runs(l, &blocks);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].start, r[0].len, r[0].blocks.len()), (B, 4 * B, 4));
        assert_eq!((r[1].start, r[1].len), (7 * B, B / 2), "short last block");
        assert_eq!(r[0].blocks[0], block(l, 0, 1));
        assert!(runs(l, &[]).is_empty());
    }

    #[test]
    fn a_run_splits_per_file_skipping_empty_files_and_marking_pads() {
        let f = files(&[(10, false), (0, false), (6, true), (20, false), (0, false)]);
        let s = segments(&f, 5, 20);
        assert_eq!(
            s,
            vec![
                Segment {
                    file: 0,
                    offset: 5,
                    len: 5,
                    pad: false
                },
                Segment {
                    file: 2,
                    offset: 0,
                    len: 6,
                    pad: true
                },
                Segment {
                    file: 3,
                    offset: 0,
                    len: 9,
                    pad: false
                },
            ]
        );
        assert_eq!(
            segments(&f, 16, 20),
            vec![Segment {
                file: 3,
                offset: 0,
                len: 20,
                pad: false
            }]
        );
        assert_eq!(segments(&f, 30, 6).iter().map(|s| s.len).sum::<u64>(), 6);
        assert!(segments(&f, 36, 0).is_empty());
    }

    #[test]
    fn the_assembler_rebuilds_blocks_from_any_chunking() {
        let l = lengths();
        let blocks = [block(l, 3, 0), block(l, 3, 1)];
        let total = (B + B / 2) as usize;
        let stream: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        for chunk in [1usize, 7, 1000, BLOCK_LEN as usize, 3 * BLOCK_LEN as usize] {
            let mut a = Assembler::new(&blocks);
            let mut got = Vec::new();
            let mut used = 0;
            for c in stream.chunks(chunk) {
                used += a.feed(c, |b, d| got.push((b, d.to_vec())));
            }
            assert!(a.is_done(), "chunk {chunk}");
            assert_eq!(used, total);
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].0, blocks[0]);
            assert_eq!(got[0].1, stream[..B as usize]);
            assert_eq!(got[1].1, stream[B as usize..]);
            // Extra bytes are not used.
            assert_eq!(a.feed(&[1, 2, 3], |_, _| panic!("no block left")), 0);
        }
    }

    #[test]
    fn a_cut_stream_leaves_the_unfinished_blocks_pending() {
        let l = lengths();
        let blocks = [block(l, 0, 0), block(l, 0, 1), block(l, 1, 0)];
        let mut a = Assembler::new(&blocks);
        let mut n = 0;
        a.feed(&vec![0; (B + 10) as usize], |_, _| n += 1);
        assert_eq!(n, 1);
        assert_eq!(a.pending().collect::<Vec<_>>(), blocks[1..].to_vec());
        assert!(!a.is_done());
    }
}
