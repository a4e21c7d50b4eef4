//! [`MmapStorage`]: the torrent's files created (zero-length ones too), pre-allocated, and mapped
//! with memmap2. Under a file selection ([`Role`]), a file that shares a piece with a selected one is
//! created sparse (only that piece's bytes are ever written) and a skipped file is not created. A verified piece is copied into the mapping and its pages are then released from our
//! address space (they stay in the page cache, dirty, and reach the disk even if we are killed), so
//! the resident set does not grow with the download.
//!
//! Files are held open through the process's [`FilePool`]: created, sized and pre-allocated at
//! [`MmapStorage::open_selected`], then closed, and reopened on their first read or write (mapped on
//! their first write), so an idle seeding torrent holds no descriptor and no mapping.
//!
//! The copy is the only access to the mapping (reads use `pread`), and it is guarded by `sigbus`: a
//! file truncated by another program, or a disk error on a mapped page, fails that write with an
//! error naming the file instead of killing the process with SIGBUS. Before the copy, the piece's
//! pages are read into the page cache in one `MADV_WILLNEED` batch and mapped writable in one
//! `MADV_POPULATE_WRITE` call, instead of one fault per page.

mod sigbus;

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use memmap2::{MmapRaw, UncheckedAdvice};

use super::pool::{FilePool, Handle, DEFAULT_MAX_OPEN_FILES};
use super::{Layout, Storage, StorageError};
use crate::bitfield::Bitfield;
use crate::metainfo::Info;
use crate::select::Role;
use crate::types::PieceIndex;

/// One stored file: created and sized; opened and mapped through the pool when used.
struct Mapped {
    path: PathBuf,
    /// The file's length in the torrent.
    len: u64,
    /// Set once a write into the mapping faulted: part of it is throwaway memory now, so no later
    /// write into this file may count as stored (the flag outlives the mapping).
    poisoned: AtomicBool,
    /// Written since the last flush.
    dirty: AtomicBool,
}

/// One file of the layout as stored.
enum Slot {
    /// A BEP 47 pad file: zeros, never stored.
    Pad,
    /// Left out of the selection: not created; a piece reaching it is an error.
    Skipped(PathBuf),
    Stored(Mapped),
}

/// Memory-mapped files of one torrent.
pub struct MmapStorage {
    layout: Layout,
    /// Per file of the layout.
    files: Vec<Slot>,
    pool: Arc<FilePool>,
    /// This storage's id in the pool.
    id: u64,
}

impl Drop for MmapStorage {
    fn drop(&mut self) {
        self.close_files();
    }
}

/// What [`MmapStorage::open`] found.
pub struct Opened {
    /// The storage.
    pub storage: MmapStorage,
    /// Pieces that touch a file that already held data: the ones worth re-checking.
    pub maybe_present: Bitfield,
}

impl MmapStorage {
    /// Creates or opens every file of `info` under `root`, at its full size, pre-allocated, with a
    /// file pool of its own.
    pub fn open(root: &Path, info: &Info) -> Result<Opened, StorageError> {
        let pool = FilePool::new(DEFAULT_MAX_OPEN_FILES);
        MmapStorage::open_selected(root, info, &Role::every_file(&info.files), pool)
    }

    /// Like [`MmapStorage::open`] under a file selection, holding files open through `pool`:
    /// `roles` (one per file) says which files are pre-allocated (selected), created sparse
    /// (boundary) or not created (skipped, pad).
    pub fn open_selected(
        root: &Path,
        info: &Info,
        roles: &[Role],
        pool: Arc<FilePool>,
    ) -> Result<Opened, StorageError> {
        sigbus::install().map_err(|error| StorageError::Io {
            path: "(installing the SIGBUS handler)".into(),
            error,
        })?;
        let layout = Layout::new(info);
        let mut maybe_present = Bitfield::new(layout.lengths().piece_count());
        let mut files = Vec::with_capacity(info.files.len());
        for (i, slot) in layout.files().iter().enumerate() {
            let path = root.join(info.file_path(i).unwrap_or_default());
            let allocate = match roles.get(i).copied().unwrap_or(Role::Selected) {
                _ if slot.pad => {
                    files.push(Slot::Pad);
                    continue;
                }
                Role::Pad | Role::Skipped => {
                    files.push(Slot::Skipped(path));
                    continue;
                }
                Role::Selected => true,
                Role::Boundary => false,
            };
            let (mapped, had_data) = open_file(&path, slot.length, allocate)?;
            if had_data {
                for p in layout.pieces_of_file(i) {
                    maybe_present.set(p);
                }
            }
            files.push(Slot::Stored(mapped));
        }
        let id = pool.register();
        Ok(Opened {
            storage: MmapStorage {
                layout,
                files,
                pool,
                id,
            },
            maybe_present,
        })
    }

    /// Closes every file this storage holds open (they reopen on their next read or write).
    pub fn close_files(&self) {
        self.pool.forget(self.id);
    }

    /// File `file`; `None` for a pad file.
    fn mapped(&self, file: usize) -> Result<Option<&Mapped>, StorageError> {
        match self.files.get(file) {
            Some(Slot::Stored(m)) => Ok(Some(m)),
            Some(Slot::Skipped(path)) => Err(StorageError::NotStored(path.display().to_string())),
            Some(Slot::Pad) | None => Ok(None),
        }
    }

    /// File `file` open, from the pool or reopened (and checked to be still whole).
    fn handle(&self, file: usize, m: &Mapped) -> Result<Arc<Handle>, StorageError> {
        self.pool
            .get((self.id, file), || reopen(&m.path, m.len))
            .map_err(|e| {
                m.truncated()
                    .unwrap_or_else(|| StorageError::io(&m.path, e, 0))
            })
    }

    fn stored(&self) -> impl Iterator<Item = (usize, &Mapped)> {
        self.files.iter().enumerate().filter_map(|(i, f)| match f {
            Slot::Stored(m) => Some((i, m)),
            _ => None,
        })
    }
}

/// Opens a file created by [`open_file`] again; one now shorter than the torrent says is refused
/// (a mapped write past its end would fault).
fn reopen(path: &Path, len: u64) -> std::io::Result<File> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    if file.metadata()?.len() < len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file is shorter than the torrent says",
        ));
    }
    Ok(file)
}

/// Creates or opens the file at `length`, then closes it; `allocate` reserves its blocks, else it
/// stays sparse.
fn open_file(path: &Path, length: u64, allocate: bool) -> Result<(Mapped, bool), StorageError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotADirectory
                || e.kind() == std::io::ErrorKind::AlreadyExists
            {
                StorageError::InTheWay(parent.display().to_string())
            } else {
                StorageError::io(parent, e, length)
            }
        })?;
    }
    let had_data = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Err(StorageError::InTheWay(path.display().to_string())),
        Ok(m) => m.len() > 0,
        Err(_) => false,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StorageError::io(path, e, length))?;
    let current = file
        .metadata()
        .map_err(|e| StorageError::io(path, e, length))?
        .len();
    if current != length {
        file.set_len(length)
            .map_err(|e| StorageError::io(path, e, length))?;
    }
    if length > 0 && allocate {
        reserve(&file, length).map_err(|e| StorageError::io(path, e, length))?;
    }
    Ok((
        Mapped {
            path: path.to_path_buf(),
            len: length,
            poisoned: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
        },
        had_data,
    ))
}

/// Reserves the file's blocks now, so a full disk is reported at the start and mapped writes do not
/// fault into holes. Filesystems without fallocate fall back to the sparse file.
fn reserve(file: &File, length: u64) -> std::io::Result<()> {
    let Ok(len) = libc::off_t::try_from(length) else {
        return Err(std::io::Error::from_raw_os_error(libc::EFBIG));
    };
    // SAFETY: a plain syscall on a file descriptor we own.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    match rc {
        0 | libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        e => Err(std::io::Error::from_raw_os_error(e)),
    }
}

/// The pages `[start, start+len)` touches, as (offset, length) inside a mapping of `map_len` bytes.
fn outer_pages(start: u64, len: u64, map_len: u64) -> Option<(usize, usize)> {
    let page = sigbus::page_size() as u64;
    let lo = start / page * page;
    let hi = start.checked_add(len)?.div_ceil(page) * page;
    let hi = hi.min(map_len);
    (hi > lo).then(|| (lo as usize, (hi - lo) as usize))
}

/// The page-aligned part of `[start, start+len)`, for releasing pages without touching neighbours.
fn inner_pages(start: u64, len: u64) -> Option<(usize, usize)> {
    let page = sigbus::page_size() as u64;
    let lo = start.div_ceil(page) * page;
    let hi = (start + len) / page * page;
    (hi > lo).then(|| (lo as usize, (hi - lo) as usize))
}

/// Drops our mapping of `[offset, offset+len)` (page-aligned inside): the dirty pages stay in the
/// page cache and are written back by the kernel.
fn release(map: &MmapRaw, offset: u64, len: u64) {
    if let Some((off, n)) = inner_pages(offset, len) {
        // SAFETY: MADV_DONTNEED on a shared file mapping only unmaps pages from this process; their
        // contents stay in the page cache and are re-read on the next access. No Rust reference
        // into the mapping outlives a call of ours.
        let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, off, n) };
    }
}

/// Starts writing `[offset, offset+len)` to disk now, without waiting for it: writeback overlaps
/// the download, dirty pages do not pile up, and the flush at completion has little left to do.
fn start_writeback(file: &File, offset: u64, len: u64) {
    let (Ok(off), Ok(n)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    // SAFETY: a plain syscall on a file descriptor we own; it only schedules IO.
    let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE) };
}

impl Mapped {
    /// Refuses a range that is not inside the file.
    fn check(&self, offset: u64, len: usize) -> Result<(), StorageError> {
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(self.short());
        }
        Ok(())
    }

    /// Copies `src` into the file's mapping at `offset` (inside the file, checked), pages prefaulted
    /// first; a fault during the copy is an error naming the file.
    fn copy_in(&self, h: &Handle, src: &[u8], offset: u64) -> Result<(), StorageError> {
        let map = h.map().map_err(|e| StorageError::io(&self.path, e, 0))?;
        if let Some((lo, n)) = outer_pages(offset, src.len() as u64, map.len() as u64) {
            // First the page cache pages, all of the range in one batch (WILLNEED reads exactly the
            // range, unlike fault read-around, which zero-filled far beyond the piece): 18% less
            // system CPU than letting populate bring them in a page per fault. Then one call
            // that maps them writable instead of a fault per page. On failure (an old kernel, a
            // truncated file) the guarded copy below faults as before and reports it.
            let _ = map.advise_range(memmap2::Advice::WillNeed, lo, n);
            let _ = map.advise_range(memmap2::Advice::PopulateWrite, lo, n);
        }
        self.dirty.store(true, Ordering::Relaxed);
        // SAFETY: the range is inside this file's mapping (checked by the caller), which lives as
        // long as `h` and which no Rust reference points into (reads use pread). Pieces are
        // disjoint byte ranges and the session writes a piece only once, after its hash matched,
        // so no two writers touch the same bytes.
        let copied =
            unsafe { sigbus::copy(src, map.as_mut_ptr().add(offset as usize), &self.poisoned) };
        if copied.is_err() {
            return Err(self.fault(&h.file));
        }
        release(map, offset, src.len() as u64);
        Ok(())
    }

    /// What went wrong when a write into the mapping faulted: the file was cut short by someone
    /// else, the disk is full (a filesystem that could not reserve the blocks), or an IO error.
    fn fault(&self, file: &File) -> StorageError {
        if let Some(truncated) = self.truncated() {
            return truncated;
        }
        let path = self.path.display().to_string();
        // SAFETY: a zeroed statvfs is a valid out-parameter; fstatvfs on a descriptor we own.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let full = unsafe { libc::fstatvfs(file.as_raw_fd(), &mut st) } == 0 && st.f_bavail == 0;
        if full {
            StorageError::DiskFull {
                path,
                need: self.len,
            }
        } else {
            StorageError::WriteFault { path }
        }
    }

    /// `Some(error)` when the file is now shorter than the torrent says (or gone).
    fn truncated(&self) -> Option<StorageError> {
        let expected = self.len;
        let now = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        (now < expected).then(|| StorageError::Truncated {
            path: self.path.display().to_string(),
            now,
            expected,
        })
    }

    fn short(&self) -> StorageError {
        StorageError::Io {
            path: self.path.display().to_string(),
            error: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "range past the end"),
        }
    }
}

impl Storage for MmapStorage {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn write_piece(&self, piece: PieceIndex, data: &[u8]) -> Result<(), StorageError> {
        for span in self.layout.spans(piece) {
            let Some(m) = self.mapped(span.file)? else {
                continue; // pad file
            };
            let src = data
                .get(span.piece_offset as usize..(span.piece_offset + span.len) as usize)
                .ok_or_else(|| m.short())?;
            m.check(span.file_offset, src.len())?;
            if src.is_empty() {
                continue;
            }
            let h = self.handle(span.file, m)?;
            m.copy_in(&h, src, span.file_offset)?;
            start_writeback(&h.file, span.file_offset, u64::from(span.len));
        }
        Ok(())
    }

    fn read(&self, piece: PieceIndex, offset: u32, out: &mut [u8]) -> Result<(), StorageError> {
        let want_end = u64::from(offset) + out.len() as u64;
        let mut filled = 0usize;
        for span in self.layout.spans(piece) {
            let s_lo = u64::from(span.piece_offset);
            let s_hi = s_lo + u64::from(span.len);
            let lo = s_lo.max(u64::from(offset));
            let hi = s_hi.min(want_end);
            if hi <= lo {
                continue;
            }
            let dst =
                &mut out[(lo - u64::from(offset)) as usize..(hi - u64::from(offset)) as usize];
            match self.mapped(span.file)? {
                None => dst.fill(0),
                Some(m) => {
                    let at = span.file_offset + (lo - s_lo);
                    m.check(at, dst.len())?;
                    let h = self.handle(span.file, m)?;
                    // pread, not a copy out of the mapping: serving a torrent would otherwise map
                    // every page it sends into our resident set. Same page cache, so the bytes are
                    // the ones the mapping wrote.
                    h.file.read_exact_at(dst, at).map_err(|e| {
                        m.truncated()
                            .unwrap_or_else(|| StorageError::io(&m.path, e, 0))
                    })?;
                }
            }
            filled += dst.len();
        }
        if filled != out.len() {
            return Err(StorageError::Io {
                path: "(torrent)".into(),
                error: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "read past the end of the piece",
                ),
            });
        }
        Ok(())
    }

    fn release(&self, piece: PieceIndex) {
        for span in self.layout.spans(piece) {
            let Some(h) = self.pool.peek((self.id, span.file)) else {
                continue; // not open: nothing of it is mapped
            };
            if let Some(map) = h.mapped() {
                release(map, span.file_offset, u64::from(span.len));
            }
        }
    }

    /// Syncs every file written since the last flush (through any descriptor: the dirty pages
    /// belong to the file, not to the mapping that wrote them), and checks that none was cut short.
    fn flush(&self) -> Result<(), StorageError> {
        for (i, m) in self.stored() {
            if m.dirty.swap(false, Ordering::Relaxed) {
                let synced = self.handle(i, m).and_then(|h| {
                    h.file
                        .sync_data()
                        .map_err(|e| StorageError::io(&m.path, e, 0))
                });
                if let Err(e) = synced {
                    m.dirty.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
            // Cut short after its last write: no fault told us, but the data is gone.
            if let Some(truncated) = m.truncated() {
                return Err(truncated);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
