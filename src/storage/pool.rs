//! [`FilePool`]: the process's open data files, at most `cap` at once (libtorrent's
//! `file_pool_size`), shared by every torrent's [`super::mmap::MmapStorage`]. A file is opened on
//! its first read or write, mapped only on its first write, and closed (descriptor and mapping) when
//! the pool is full and it is the least recently used, when it has been idle for a whole
//! [`FilePool::close_idle`] interval, or when its torrent's storage is dropped. 500 seeding torrents
//! therefore hold as many descriptors as files are being read, not one per file of every torrent.
//!
//! A handle still in use when the pool lets go of it stays valid: the pool holds one `Arc`, users
//! hold others, and the file closes when the last one is dropped. Closing a mapping loses nothing:
//! its dirty pages belong to the page cache, and `fsync` through any later descriptor of the same
//! file writes them.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use memmap2::MmapRaw;

/// libtorrent's default `file_pool_size` is 40; 128 lets a download write up to 128 files in
/// turn without reopening any, and stays far below the usual open-file limit of 1024.
pub const DEFAULT_MAX_OPEN_FILES: usize = 128;

/// A file of one storage: (storage id, file index).
pub(super) type Key = (u64, usize);

/// One open file, and its mapping once something was written.
pub(super) struct Handle {
    pub(super) file: File,
    map: OnceLock<MmapRaw>,
}

impl Handle {
    /// The file's writable shared mapping, made on first use.
    pub(super) fn map(&self) -> std::io::Result<&MmapRaw> {
        if let Some(m) = self.map.get() {
            return Ok(m);
        }
        let map = MmapRaw::map_raw(&self.file)?;
        // Pieces land in random order: no readahead around a write fault. Readahead over
        // just-allocated (unwritten) extents zero-fills pages far beyond the piece, at large folio
        // orders, and that memset was half the CPU of a fast web seed download.
        let _ = map.advise(memmap2::Advice::Random);
        // Another thread may have mapped it meanwhile: theirs is kept, ours unmapped.
        let _ = self.map.set(map);
        self.map
            .get()
            .ok_or_else(|| std::io::Error::other("mapping vanished"))
    }

    /// The mapping if one was made.
    pub(super) fn mapped(&self) -> Option<&MmapRaw> {
        self.map.get()
    }
}

struct Entry {
    handle: Arc<Handle>,
    /// When it was last used, in the pool's ticks.
    stamp: u64,
}

#[derive(Default)]
struct State {
    tick: u64,
    open: HashMap<Key, Entry>,
    /// `open`'s keys by stamp, oldest first.
    order: BTreeMap<u64, Key>,
    /// The tick of the last idle sweep.
    swept_at: u64,
}

impl State {
    fn touch(&mut self, key: Key) -> Option<Arc<Handle>> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.open.get_mut(&key)?;
        self.order.remove(&entry.stamp);
        entry.stamp = tick;
        self.order.insert(tick, key);
        Some(entry.handle.clone())
    }

    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.open.remove(key) {
            self.order.remove(&e.stamp);
        }
    }

    /// Closes the least recently used files until at most `keep` remain.
    fn shrink_to(&mut self, keep: usize) {
        while self.open.len() > keep {
            let Some((_, key)) = self.order.pop_first() else {
                break;
            };
            self.open.remove(&key);
        }
    }
}

/// Open data files of every torrent, least recently used closed first.
pub struct FilePool {
    cap: usize,
    state: Mutex<State>,
    next_id: AtomicU64,
}

impl FilePool {
    /// A pool of at most `cap` (at least 1) open files.
    pub fn new(cap: usize) -> Arc<FilePool> {
        Arc::new(FilePool {
            cap: cap.max(1),
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh storage id, for the keys of one storage's files.
    pub(super) fn register(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The open file `key`, opened with `open` if it is not (outside the pool's lock). When the
    /// process is out of descriptors, half the pool is closed and the open tried once more.
    pub(super) fn get(
        &self,
        key: Key,
        open: impl Fn() -> std::io::Result<File>,
    ) -> std::io::Result<Arc<Handle>> {
        if let Some(h) = self.state().touch(key) {
            return Ok(h);
        }
        let file = match open() {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                {
                    let mut s = self.state();
                    let keep = s.open.len() / 2;
                    s.shrink_to(keep);
                }
                open()?
            }
            other => other?,
        };
        let mut s = self.state();
        if let Some(h) = s.touch(key) {
            return Ok(h); // opened meanwhile by another thread: ours is closed
        }
        let handle = Arc::new(Handle {
            file,
            map: OnceLock::new(),
        });
        s.tick += 1;
        let stamp = s.tick;
        s.open.insert(
            key,
            Entry {
                handle: handle.clone(),
                stamp,
            },
        );
        s.order.insert(stamp, key);
        let cap = self.cap;
        s.shrink_to(cap);
        Ok(handle)
    }

    /// The file `key` if it is open now (it is not opened).
    pub(super) fn peek(&self, key: Key) -> Option<Arc<Handle>> {
        self.state().open.get(&key).map(|e| e.handle.clone())
    }

    /// Closes every file of storage `id`.
    pub(super) fn forget(&self, id: u64) {
        let mut s = self.state();
        let keys: Vec<Key> = s.open.keys().filter(|k| k.0 == id).copied().collect();
        for k in keys {
            s.remove(&k);
        }
    }

    /// Closes the files not used since the previous call: called every interval, it closes a file
    /// after one to two intervals of idleness.
    pub fn close_idle(&self) {
        let mut s = self.state();
        let since = s.swept_at;
        while let Some((&stamp, _)) = s.order.first_key_value() {
            if stamp > since {
                break;
            }
            let keep = s.open.len() - 1;
            s.shrink_to(keep);
        }
        s.swept_at = s.tick;
    }

    /// Files open now.
    pub fn open_files(&self) -> usize {
        self.state().open.len()
    }

    /// Files open now that are also mapped.
    pub fn mapped_files(&self) -> usize {
        self.state()
            .open
            .values()
            .filter(|e| e.handle.mapped().is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_files(n: usize) -> (tempfile::TempDir, Vec<std::path::PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let paths = (0..n)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                std::fs::write(&p, [i as u8; 4096]).unwrap();
                p
            })
            .collect();
        (dir, paths)
    }

    fn opener(p: &std::path::Path) -> impl Fn() -> std::io::Result<File> + '_ {
        move || std::fs::OpenOptions::new().read(true).write(true).open(p)
    }

    #[test]
    fn at_most_cap_files_open_least_recently_used_closed_first() {
        let (_dir, paths) = temp_files(5);
        let pool = FilePool::new(3);
        let id = pool.register();
        for (i, p) in paths.iter().enumerate().take(3) {
            pool.get((id, i), opener(p)).unwrap();
        }
        // Use file 0 again: file 1 is now the least recently used.
        pool.get((id, 0), opener(&paths[0])).unwrap();
        pool.get((id, 3), opener(&paths[3])).unwrap();
        assert_eq!(pool.open_files(), 3);
        assert!(pool.peek((id, 1)).is_none(), "the LRU file was closed");
        for i in [0, 2, 3] {
            assert!(pool.peek((id, i)).is_some(), "file {i} open");
        }
    }

    #[test]
    fn a_handle_in_use_outlives_its_eviction_and_reopens_with_the_same_bytes() {
        let (_dir, paths) = temp_files(2);
        let pool = FilePool::new(1);
        let id = pool.register();
        let h0 = pool.get((id, 0), opener(&paths[0])).unwrap();
        let map = h0.map().unwrap();
        // SAFETY: the mapping is 4096 bytes long and nothing else accesses it.
        unsafe { *map.as_mut_ptr() = 0xAB };
        pool.get((id, 1), opener(&paths[1])).unwrap();
        assert!(pool.peek((id, 0)).is_none());
        assert_eq!(map.len(), 4096, "still mapped while held");
        drop(h0);
        let again = pool.get((id, 0), opener(&paths[0])).unwrap();
        let mut b = [0u8; 2];
        std::os::unix::fs::FileExt::read_exact_at(&again.file, &mut b, 0).unwrap();
        assert_eq!(
            b,
            [0xAB, 0],
            "the write through the closed mapping is in the file"
        );
        assert!(
            again.mapped().is_none(),
            "a reopened file is not mapped until written"
        );
    }

    #[test]
    fn idle_files_close_after_one_to_two_sweeps_and_forget_closes_a_storage() {
        let (_dir, paths) = temp_files(3);
        let pool = FilePool::new(10);
        let a = pool.register();
        let b = pool.register();
        pool.get((a, 0), opener(&paths[0])).unwrap();
        pool.get((a, 1), opener(&paths[1])).unwrap();
        pool.get((b, 0), opener(&paths[2])).unwrap();
        pool.close_idle(); // the first sweep: all three were used since the start
        assert_eq!(pool.open_files(), 3);
        pool.get((a, 0), opener(&paths[0])).unwrap();
        pool.get((b, 0), opener(&paths[2])).unwrap();
        pool.close_idle();
        assert_eq!(
            pool.open_files(),
            2,
            "(a, 1) idle for a whole interval: closed"
        );
        assert!(pool.peek((a, 1)).is_none());
        pool.get((a, 0), opener(&paths[0])).unwrap();
        pool.close_idle();
        assert_eq!(
            pool.open_files(),
            1,
            "(b, 0) idle for a whole interval: closed"
        );
        assert!(pool.peek((a, 0)).is_some());
        pool.forget(a);
        assert_eq!(pool.open_files(), 0);
    }

    #[test]
    fn an_open_error_is_returned_and_nothing_is_kept() {
        let pool = FilePool::new(4);
        let id = pool.register();
        let missing = std::path::Path::new("/nonexistent.invalid/x");
        assert!(pool.get((id, 0), opener(missing)).is_err());
        assert_eq!(pool.open_files(), 0);
    }
}
