//! [`MemoryStorage`]: the whole torrent in one `Vec`, for tests of everything above storage.

use std::sync::Mutex;

use super::{Layout, Storage, StorageError};
use crate::types::PieceIndex;

/// Pieces kept in memory. Bytes never written read as zeros.
pub struct MemoryStorage {
    layout: Layout,
    /// The byte stream. Held only for a copy, never across `.await`.
    bytes: Mutex<Vec<u8>>,
}

impl MemoryStorage {
    /// Empty storage for `layout`.
    pub fn new(layout: Layout) -> MemoryStorage {
        let total = layout.lengths().total() as usize;
        MemoryStorage {
            layout,
            bytes: Mutex::new(vec![0; total]),
        }
    }

    fn range(&self, piece: PieceIndex, offset: u32, len: usize) -> Option<std::ops::Range<usize>> {
        let lengths = self.layout.lengths();
        let end = u64::from(offset) + len as u64;
        if end > u64::from(lengths.piece_len(piece)) {
            return None;
        }
        let start = (lengths.piece_offset(piece) + u64::from(offset)) as usize;
        Some(start..start + len)
    }
}

fn out_of_range() -> StorageError {
    StorageError::Io {
        path: "memory".into(),
        error: std::io::Error::new(std::io::ErrorKind::InvalidInput, "range outside the piece"),
    }
}

impl Storage for MemoryStorage {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn write_piece(&self, piece: PieceIndex, data: &[u8]) -> Result<(), StorageError> {
        let r = self.range(piece, 0, data.len()).ok_or_else(out_of_range)?;
        self.bytes.lock().unwrap_or_else(|p| p.into_inner())[r].copy_from_slice(data);
        Ok(())
    }

    fn read(&self, piece: PieceIndex, offset: u32, out: &mut [u8]) -> Result<(), StorageError> {
        let r = self
            .range(piece, offset, out.len())
            .ok_or_else(out_of_range)?;
        out.copy_from_slice(&self.bytes.lock().unwrap_or_else(|p| p.into_inner())[r]);
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
