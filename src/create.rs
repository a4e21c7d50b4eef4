//! `pixtorrent create`: a v1 `.torrent` for a file or a directory. Files are listed in byte order of
//! their paths (deterministic on every machine), hidden files (a name starting with `.`) and symbolic
//! links are skipped and counted, the piece size is chosen for 1,000–2,000 pieces unless given, and
//! pieces are hashed on every core.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use sha1::{Digest, Sha1};

use crate::bencode::Value;
use crate::storage::layout::{FileSlot, Layout};
use crate::types::Lengths;

/// Smallest automatic piece size (the block size).
pub const MIN_PIECE: u32 = 16 * 1024;
/// Largest automatic piece size: 16 MiB, what current clients use for the biggest torrents.
pub const MAX_PIECE: u32 = 16 * 1024 * 1024;
/// Most files in one torrent we create (the reader's tree budget is about 60,000).
pub const MAX_FILES: usize = 50_000;

/// What to put in the torrent.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Trackers, each its own tier.
    pub trackers: Vec<String>,
    /// Web seeds (BEP 19).
    pub web_seeds: Vec<String>,
    /// Piece length; `None` chooses one.
    pub piece_length: Option<u32>,
    /// BEP 27 private flag.
    pub private: bool,
    /// Free text.
    pub comment: Option<String>,
    /// Hashing threads (0: every core).
    pub threads: usize,
}

/// Why a torrent could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// Reading the input failed.
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    /// Nothing to share.
    #[error("{0}: no files to put in a torrent (empty, or only hidden files and links)")]
    Empty(String),
    /// Not a power of two of at least 16 KiB.
    #[error("piece size {0} is not a power of two between 16 KiB and 256 MiB")]
    BadPieceSize(u64),
    /// Over [`MAX_FILES`].
    #[error("more than {MAX_FILES} files")]
    TooManyFiles,
    /// A name that is not UTF-8.
    #[error("{0}: file names must be UTF-8")]
    NotUtf8(String),
    /// A file changed size while hashing.
    #[error("{0} changed while it was being hashed")]
    Changed(String),
}

/// A torrent made: its bytes, and what was skipped.
#[derive(Debug)]
pub struct Created {
    /// The bencoded torrent.
    pub bytes: Vec<u8>,
    /// Files included.
    pub files: usize,
    /// Hidden files and links left out.
    pub skipped: usize,
    /// Total bytes.
    pub total: u64,
    /// Piece length used.
    pub piece_length: u32,
}

/// The automatic piece size for `total` bytes: the smallest power of two giving at most 2,000
/// pieces, between [`MIN_PIECE`] and [`MAX_PIECE`].
pub fn auto_piece_length(total: u64) -> u32 {
    let mut p = MIN_PIECE;
    while p < MAX_PIECE && total.div_ceil(u64::from(p)) > 2000 {
        p *= 2;
    }
    p
}

struct Input {
    path: PathBuf,
    rel: Vec<String>,
    len: u64,
}

fn io(path: &Path, error: std::io::Error) -> CreateError {
    CreateError::Io {
        path: path.display().to_string(),
        error,
    }
}

fn walk(
    dir: &Path,
    rel: &[String],
    out: &mut Vec<Input>,
    skipped: &mut usize,
) -> Result<(), CreateError> {
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let e = e.map_err(|e| io(dir, e))?;
        let name = e
            .file_name()
            .into_string()
            .map_err(|n| CreateError::NotUtf8(dir.join(n).display().to_string()))?;
        entries.push((name, e.path()));
    }
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, path) in entries {
        let meta = std::fs::symlink_metadata(&path).map_err(|e| io(&path, e))?;
        if name.starts_with('.') || meta.file_type().is_symlink() {
            *skipped += 1;
            continue;
        }
        let mut r = rel.to_vec();
        r.push(name);
        if meta.is_dir() {
            walk(&path, &r, out, skipped)?;
        } else if meta.is_file() {
            if out.len() >= MAX_FILES {
                return Err(CreateError::TooManyFiles);
            }
            out.push(Input {
                path,
                rel: r,
                len: meta.len(),
            });
        } else {
            *skipped += 1;
        }
    }
    Ok(())
}

/// Makes a torrent of `path` (a file or a directory); `progress` is called with pieces hashed.
pub fn create(
    path: &Path,
    opts: &CreateOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Created, CreateError> {
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CreateError::NotUtf8(path.display().to_string()))?
        .to_string();
    let mut inputs = Vec::new();
    let mut skipped = 0;
    let single = meta.is_file();
    if single {
        inputs.push(Input {
            path: path.to_path_buf(),
            rel: vec![name.clone()],
            len: meta.len(),
        });
    } else {
        walk(path, &[], &mut inputs, &mut skipped)?;
    }
    let total: u64 = inputs.iter().map(|i| i.len).sum();
    if inputs.is_empty() || total == 0 {
        return Err(CreateError::Empty(path.display().to_string()));
    }
    let piece_length = match opts.piece_length {
        Some(p) if p.is_power_of_two() && (MIN_PIECE..=256 * 1024 * 1024).contains(&p) => p,
        Some(p) => return Err(CreateError::BadPieceSize(u64::from(p))),
        None => auto_piece_length(total),
    };
    let lengths = Lengths::new(total, piece_length)
        .ok_or(CreateError::BadPieceSize(u64::from(piece_length)))?;
    let hashes = hash_pieces(&inputs, lengths, opts.threads, progress)?;
    let bytes = encode(&name, single, &inputs, piece_length, &hashes, opts);
    Ok(Created {
        bytes,
        files: inputs.len(),
        skipped,
        total,
        piece_length,
    })
}

fn hash_pieces(
    inputs: &[Input],
    lengths: Lengths,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<[u8; 20]>, CreateError> {
    let mut offset = 0;
    let slots: Vec<FileSlot> = inputs
        .iter()
        .map(|i| {
            let s = FileSlot {
                offset,
                length: i.len,
                pad: false,
            };
            offset += i.len;
            s
        })
        .collect();
    let layout = Layout::from_files(lengths, slots);
    let files: Vec<File> = inputs
        .iter()
        .map(|i| File::open(&i.path).map_err(|e| io(&i.path, e)))
        .collect::<Result<_, _>>()?;
    let n = lengths.piece_count() as usize;
    let hashes = Mutex::new(vec![[0u8; 20]; n]);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failed = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        threads
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut buf = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(piece) = lengths.piece(i as u32) else {
                        break;
                    };
                    buf.resize(lengths.piece_len(piece) as usize, 0);
                    for span in layout.spans(piece) {
                        let dst = &mut buf
                            [span.piece_offset as usize..(span.piece_offset + span.len) as usize];
                        if let Err(e) = files[span.file].read_exact_at(dst, span.file_offset) {
                            let p = &inputs[span.file].path;
                            let err = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                                CreateError::Changed(p.display().to_string())
                            } else {
                                io(p, e)
                            };
                            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
                            stop.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                    let digest: [u8; 20] = Sha1::digest(&buf).into();
                    hashes.lock().unwrap_or_else(|p| p.into_inner())[i] = digest;
                    progress(done.fetch_add(1, Ordering::Relaxed) as u64 + 1);
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(hashes.into_inner().unwrap_or_else(|p| p.into_inner()))
}

fn encode(
    name: &str,
    single: bool,
    inputs: &[Input],
    piece_length: u32,
    hashes: &[[u8; 20]],
    opts: &CreateOptions,
) -> Vec<u8> {
    let mut info = Value::dict([
        ("name", Value::str(name)),
        ("piece length", Value::Int(i64::from(piece_length))),
        ("pieces", Value::Bytes(hashes.concat())),
    ]);
    if single {
        info.insert("length", Value::Int(inputs[0].len as i64));
    } else {
        let files = inputs
            .iter()
            .map(|i| {
                Value::dict([
                    ("length", Value::Int(i.len as i64)),
                    (
                        "path",
                        Value::List(i.rel.iter().map(|c| Value::str(c)).collect()),
                    ),
                ])
            })
            .collect();
        info.insert("files", Value::List(files));
    }
    if opts.private {
        info.insert("private", Value::Int(1));
    }
    let mut torrent = Value::dict([
        ("info", info),
        (
            "created by",
            Value::str(concat!("pixtorrent ", env!("CARGO_PKG_VERSION"))),
        ),
    ]);
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        torrent.insert("creation date", Value::Int(d.as_secs() as i64));
    }
    if let Some(first) = opts.trackers.first() {
        torrent.insert("announce", Value::str(first));
    }
    if opts.trackers.len() > 1 {
        let tiers = opts
            .trackers
            .iter()
            .map(|t| Value::List(vec![Value::str(t)]))
            .collect();
        torrent.insert("announce-list", Value::List(tiers));
    }
    if !opts.web_seeds.is_empty() {
        torrent.insert(
            "url-list",
            Value::List(opts.web_seeds.iter().map(|u| Value::str(u)).collect()),
        );
    }
    if let Some(c) = &opts.comment {
        torrent.insert("comment", Value::str(c));
    }
    torrent.encode()
}

#[cfg(test)]
mod tests;
