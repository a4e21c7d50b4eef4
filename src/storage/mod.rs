//! Where verified pieces live: the [`Storage`] trait (write a whole verified piece, read any range,
//! flush), the piece→file [`layout`], an mmap-backed implementation for real files (a file truncated
//! under it, or a disk error on a mapped page, is an error, not a SIGBUS) and an in-memory one for
//! tests, the piece [`check`] by the torrent's format (v1, v2, hybrid), and the parallel re-check
//! that lets a download resume.

pub mod check;
pub mod layout;
pub mod memory;
pub mod mmap;
pub mod pool;
pub mod resume;

use sha1::{Digest, Sha1};

use crate::bitfield::Bitfield;
use crate::types::PieceIndex;

pub use check::PieceCheck;
pub use layout::Layout;

/// Why storage failed. Every variant stops the download: data cannot be kept safely.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The disk is full (or the user's quota is).
    #[error("disk full: cannot store {path} ({need} bytes)")]
    DiskFull { path: String, need: u64 },
    /// Any other IO failure, with the path it concerns.
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    /// Another program made a file shorter while we were writing it.
    #[error(
        "{path}: the file was truncated by another program (now {now} bytes, expected {expected}) \
         while pixtorrent was writing it; verified pieces still on disk are kept, run the same command \
         again to resume"
    )]
    Truncated {
        path: String,
        now: u64,
        expected: u64,
    },
    /// Storing into the file's mapping failed (the kernel could not read or allocate the page).
    #[error(
        "{path}: input/output error while storing a verified piece in this file (a failing disk?); \
         verified pieces are kept, run the same command again to resume"
    )]
    WriteFault { path: String },
    /// A piece reached a file left out of the selection (a bug: such pieces are never picked).
    #[error("{0}: this file is not selected, so it is not stored")]
    NotStored(String),
    /// A path in the way: a file where a directory is needed, or the reverse.
    #[error("{0}: a file or directory of another kind is in the way")]
    InTheWay(String),
}

impl StorageError {
    /// An IO error on `path`, reclassified as [`StorageError::DiskFull`] when it is ENOSPC/EDQUOT.
    pub fn io(path: &std::path::Path, error: std::io::Error, need: u64) -> StorageError {
        let path = path.display().to_string();
        match error.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => StorageError::DiskFull { path, need },
            _ => StorageError::Io { path, error },
        }
    }
}

/// Storage of one torrent's pieces. Implementations are shared by threads: writes of different
/// pieces may run at once; a piece is written only after its hash matched.
pub trait Storage: Send + Sync {
    /// The layout this storage was opened with.
    fn layout(&self) -> &Layout;

    /// Stores a whole verified piece.
    fn write_piece(&self, piece: PieceIndex, data: &[u8]) -> Result<(), StorageError>;

    /// Reads `out.len()` bytes of `piece` from `offset` (pad files read as zeros).
    fn read(&self, piece: PieceIndex, offset: u32, out: &mut [u8]) -> Result<(), StorageError>;

    /// Lets go of any memory that reading `piece` pulled in (a hint; data is unaffected).
    fn release(&self, _piece: PieceIndex) {}

    /// Makes every stored byte durable.
    fn flush(&self) -> Result<(), StorageError>;
}

/// SHA-1 of `data` equals `expected`.
pub fn hash_matches(data: &[u8], expected: &[u8; 20]) -> bool {
    let digest = Sha1::digest(data);
    digest.as_slice() == expected
}

/// Re-checks the `candidates` pieces with `check` on `threads` threads; returns the ones that
/// match. Reading a piece that was never written gives zeros (or an error), which fails the check.
pub fn recheck(
    storage: &dyn Storage,
    check: &PieceCheck,
    candidates: &Bitfield,
    threads: usize,
) -> Bitfield {
    let lengths = storage.layout().lengths();
    let todo: Vec<u32> = candidates.ones().collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Bitfield::new(lengths.piece_count()));
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let mut buf = Vec::new();
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&i) = todo.get(k) else { break };
                    let Some(piece) = lengths.piece(i) else {
                        continue;
                    };
                    buf.resize(lengths.piece_len(piece) as usize, 0);
                    let good = storage.read(piece, 0, &mut buf).is_ok() && check.matches(i, &buf);
                    storage.release(piece);
                    if good {
                        results.lock().unwrap_or_else(|p| p.into_inner()).set(i);
                    }
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::layout::FileSlot;
    use crate::types::Lengths;

    #[test]
    fn recheck_finds_exactly_the_good_pieces() {
        let lengths = Lengths::new(10_000, 1024).unwrap();
        let layout = Layout::from_files(
            lengths,
            vec![FileSlot {
                offset: 0,
                length: 10_000,
                pad: false,
            }],
        );
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let hashes: Vec<[u8; 20]> = data.chunks(1024).map(|c| Sha1::digest(c).into()).collect();
        let store = memory::MemoryStorage::new(layout);
        for i in [0u32, 3, 9] {
            let p = lengths.piece(i).unwrap();
            let off = lengths.piece_offset(p) as usize;
            let len = lengths.piece_len(p) as usize;
            store.write_piece(p, &data[off..off + len]).unwrap();
        }
        let check = PieceCheck::v1(hashes);
        let got = recheck(&store, &check, &Bitfield::full(10), 3);
        assert_eq!(got.ones().collect::<Vec<_>>(), vec![0, 3, 9]);
        let only = {
            let mut b = Bitfield::new(10);
            b.set(3);
            b.set(4);
            b
        };
        assert_eq!(
            recheck(&store, &check, &only, 2).ones().collect::<Vec<_>>(),
            vec![3]
        );
    }
}
