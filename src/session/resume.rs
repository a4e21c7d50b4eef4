//! Fast resume in the session: at start, the pieces a resume file lets us trust without hashing
//! (see [`crate::storage::resume`]); while the torrent runs, the file rewritten every
//! [`SAVE_EVERY`], and once more when it stops.
//!
//! Saving takes, in this order: the set of verified pieces, a flush of the files (so those pieces
//! are on disk), then each file's size and mtime. A piece verified later is not in the file: a
//! restart re-checks it (every piece not trusted that may hold data is re-checked). So a `kill -9`
//! at any moment loses no verified piece, and an unverified piece never counts as verified.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::Ctx;
use crate::bitfield::Bitfield;
use crate::metainfo::{Info, Metainfo};
use crate::storage::resume::{self, Resume, ResumeError, Stamp};
use crate::storage::Layout;

/// The resume file is rewritten this often while the torrent runs.
pub const SAVE_EVERY: Duration = Duration::from_secs(30);

/// One torrent's resume file.
#[derive(Debug)]
pub struct ResumeFile {
    /// One save at a time (the periodic one may still run when the final one starts).
    saving: std::sync::Mutex<()>,
    path: PathBuf,
    /// The output directory, canonical: the key beside the info-hash.
    dir: PathBuf,
    meta: Arc<Metainfo>,
}

impl ResumeFile {
    /// The resume file of `meta` in the output directory `dir` (which exists), under `state`.
    pub fn new(state: &std::path::Path, dir: &std::path::Path, meta: Arc<Metainfo>) -> ResumeFile {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let path = resume::path_for(state, meta.info_hash, &dir.to_string_lossy());
        ResumeFile {
            saving: std::sync::Mutex::new(()),
            path,
            dir,
            meta,
        }
    }

    /// The stamps of the torrent's files now (pad files: `None`).
    pub fn stamps(&self) -> Vec<Option<Stamp>> {
        stamps(&self.dir, &self.meta.info)
    }

    /// The pieces to trust without hashing, given the files' stamps read before the storage
    /// opened them; with a one-line note when a resume file exists but cannot be used.
    pub fn trusted(&self, before: &[Option<Stamp>], layout: &Layout) -> (Bitfield, Option<String>) {
        let none = Bitfield::new(layout.lengths().piece_count());
        let bytes = match resume::load(&self.path) {
            Ok(Some(b)) => b,
            Ok(None) => return (none, None),
            Err(e) => {
                return (
                    none,
                    Some(format!(
                        "resume data unreadable ({e}): checking every piece"
                    )),
                )
            }
        };
        let dir = self.dir.to_string_lossy();
        let info = &self.meta.info;
        match resume::parse(
            &bytes,
            self.meta.info_hash,
            &dir,
            info.lengths.piece_count(),
            info.files.len(),
        ) {
            Ok(saved) => (resume::trusted(&saved, before, layout), None),
            Err(
                e @ (ResumeError::Corrupt
                | ResumeError::Shape
                | ResumeError::OtherTorrent
                | ResumeError::OtherDirectory),
            ) => (none, Some(format!("{e}: checking every piece"))),
        }
    }

    /// Writes the file for `ctx` now (blocking: flushes the storage).
    pub fn save(&self, ctx: &Ctx) -> std::io::Result<()> {
        let _one = self.saving.lock().unwrap_or_else(|p| p.into_inner());
        let verified = ctx.lock().picker().have().clone();
        ctx.storage
            .flush()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let record = Resume {
            info_hash: self.meta.info_hash,
            dir: self.dir.to_string_lossy().into_owned(),
            verified,
            files: self.stamps(),
        };
        resume::save(&self.path, &record)
    }
}

fn stamps(dir: &std::path::Path, info: &Info) -> Vec<Option<Stamp>> {
    (0..info.files.len())
        .map(|i| {
            if info.files[i].attr.pad {
                return None;
            }
            resume::stamp(&dir.join(info.file_path(i)?))
        })
        .collect()
}

/// Rewrites the resume file every [`SAVE_EVERY`] until aborted, when pieces were verified since the
/// last save (the caller's, which held `saved` pieces). The rounds start at a random offset, so the
/// torrents of one process do not all flush and fsync in the same second.
pub async fn keep(ctx: Arc<Ctx>, file: Arc<ResumeFile>, mut saved: u32) {
    let offset = SAVE_EVERY.mul_f64(rand::random::<f64>());
    let first = tokio::time::Instant::now() + offset;
    let mut tick = tokio::time::interval_at(first, SAVE_EVERY);
    let verified = || ctx.lock().picker().have().count();
    loop {
        tick.tick().await;
        let now = verified();
        if now != saved {
            save(&ctx, &file).await;
            saved = now;
        }
    }
}

/// The last save, when the torrent stops: bounded on interrupt, as the flush is (a slow disk must not
/// hold up Ctrl-C).
pub async fn save_at_stop(ctx: &Arc<Ctx>, file: &Arc<ResumeFile>, interrupted: bool) {
    let wait = Duration::from_secs(if interrupted { 2 } else { 60 });
    let _ = tokio::time::timeout(wait, save(ctx, file)).await;
}

/// Writes the resume file on a blocking thread; a failure is logged (the download goes on: the
/// next start re-checks).
pub async fn save(ctx: &Arc<Ctx>, file: &Arc<ResumeFile>) {
    let (ctx, file) = (ctx.clone(), file.clone());
    let done = tokio::task::spawn_blocking(move || file.save(&ctx)).await;
    if let Ok(Err(e)) = done {
        tracing::warn!("cannot save resume data: {e}");
    }
}
