//! `pixtorrent create`: a `.torrent` (v1, v2 or hybrid: [`Format`]) for a file or a directory. Files
//! are listed in byte order of their path components (deterministic on every machine), hidden files (a
//! name starting with `.`) and symbolic links are skipped and counted, the piece size is chosen for
//! 1,000–2,000 pieces unless given, and pieces are hashed on every core. What is made is read back
//! with [`Metainfo`] before it is returned. The BEP 52 side lives in [`v2`].

mod v2;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use sha1::{Digest, Sha1};

use crate::bencode::{Limits, Value};
use crate::metainfo::{Metainfo, MetainfoError};
use crate::storage::layout::{FileSlot, Layout};
use crate::types::{InfoHash, InfoHashV2, Lengths};

/// Smallest automatic piece size (the block size).
pub const MIN_PIECE: u32 = 16 * 1024;
/// Largest automatic piece size: 16 MiB, what current clients use for the biggest torrents.
pub const MAX_PIECE: u32 = 16 * 1024 * 1024;
/// Most files in one torrent we create (the reader's tree budget is about 60,000).
pub const MAX_FILES: usize = 50_000;

/// Which BitTorrent version(s) a torrent describes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// BEP 3: SHA-1 piece hashes over the files laid end to end. Every client reads it (the default;
    /// the README says why).
    #[default]
    V1,
    /// BEP 52 only: a SHA-256 Merkle tree per file (`file tree`, `piece layers`), as libtorrent's
    /// `create_torrent` with `v2_only` makes it. v1-only clients cannot use it.
    V2,
    /// Both in one `info` (BEP 52 hybrid): the v2 fields, and v1 `pieces` over the files with BEP 47
    /// pad files between them so each file starts on a piece boundary, as libtorrent 2.0 makes it.
    Hybrid,
}

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
    /// v1, v2 or hybrid.
    pub format: Format,
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
    /// More pieces than a `.torrent` has room for.
    #[error("{pieces} pieces of {piece_length} bytes: their hashes alone would pass the 10 MiB a .torrent may have; choose a larger piece size")]
    TooManyPieces { pieces: u64, piece_length: u32 },
    /// What was made does not read back (past a reader's bounds: too many files, or names too long).
    #[error("the torrent made would not load: {0}")]
    Unreadable(MetainfoError),
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
    /// Pieces in the torrent (for a hybrid, pad files included).
    pub pieces: u32,
    /// The swarm's 20-byte id: the v1 info-hash, or for a v2-only torrent its v2 one truncated.
    pub info_hash: InfoHash,
    /// The v2 info-hash (SHA-256 of `info`), for v2 and hybrid torrents.
    pub info_hash_v2: Option<InfoHashV2>,
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

/// One file to share: where it is, its path inside the torrent (for a single file, its name), its size.
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
    let (name, single, inputs, skipped) = gather(path)?;
    let total: u64 = inputs.iter().map(|i| i.len).sum();
    if inputs.is_empty() || total == 0 {
        return Err(CreateError::Empty(path.display().to_string()));
    }
    let piece_length = match opts.piece_length {
        Some(p) if p.is_power_of_two() && (MIN_PIECE..=256 * 1024 * 1024).contains(&p) => p,
        Some(p) => return Err(CreateError::BadPieceSize(u64::from(p))),
        None => auto_piece_length(total),
    };
    let lengths: Vec<u64> = inputs.iter().map(|i| i.len).collect();
    check_size(&lengths, piece_length, opts.format)?;
    let (mut info, layers) = match opts.format {
        Format::V1 => {
            let lengths = Lengths::new(total, piece_length)
                .ok_or(CreateError::BadPieceSize(u64::from(piece_length)))?;
            let hashes = hash_pieces(&inputs, lengths, opts.threads, progress)?;
            (info_v1(&name, single, &inputs, piece_length, &hashes), None)
        }
        Format::V2 | Format::Hybrid => {
            let hybrid = opts.format == Format::Hybrid;
            let hashed = v2::hash(&inputs, piece_length, hybrid, opts.threads, progress)?;
            let info = v2::info(&name, single, &inputs, piece_length, &hashed, hybrid);
            (info, Some(v2::piece_layers(&hashed)))
        }
    };
    if opts.private {
        info.insert("private", Value::Int(1));
    }
    let bytes = wrap(info, layers, opts);
    let meta = Metainfo::from_bytes_any_version(&bytes).map_err(CreateError::Unreadable)?;
    Ok(Created {
        bytes,
        files: inputs.len(),
        skipped,
        total,
        piece_length,
        pieces: meta.info.lengths.piece_count(),
        info_hash: meta.info_hash,
        info_hash_v2: meta.info_hash_v2,
    })
}

/// The files to share: the torrent's name, whether it is a single file, the files in order, and how
/// many entries were left out.
fn gather(path: &Path) -> Result<(String, bool, Vec<Input>, usize), CreateError> {
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
    Ok((name, single, inputs, skipped))
}

/// Refuses, before any hashing, a torrent whose piece hashes alone would pass the size readers accept
/// ([`Limits::TORRENT`], libtorrent's default too): 20 bytes a piece for v1, 32 for v2 (a piece-layer
/// entry or a file's root), both for a hybrid, whose files each start a new piece.
fn check_size(lengths: &[u64], piece_length: u32, format: Format) -> Result<(), CreateError> {
    let total: u64 = lengths.iter().sum();
    let (pieces, per_piece) = match format {
        Format::V1 => (total.div_ceil(u64::from(piece_length)), 20),
        Format::V2 => (v2::piece_count(lengths, piece_length), 32),
        Format::Hybrid => (v2::piece_count(lengths, piece_length), 52),
    };
    if pieces.saturating_mul(per_piece) > Limits::TORRENT.max_len as u64 {
        return Err(CreateError::TooManyPieces {
            pieces,
            piece_length,
        });
    }
    Ok(())
}

/// The v1 piece hashes: SHA-1 of each piece of the files laid end to end.
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
    let files = open_all(inputs)?;
    let pieces: Vec<_> = (0..lengths.piece_count())
        .filter_map(|i| lengths.piece(i))
        .collect();
    parallel(pieces.len(), threads, progress, |i, buf| {
        let piece = pieces[i];
        buf.resize(lengths.piece_len(piece) as usize, 0);
        for span in layout.spans(piece) {
            let dst = &mut buf[span.piece_offset as usize..(span.piece_offset + span.len) as usize];
            read_at(&files[span.file], &inputs[span.file], dst, span.file_offset)?;
        }
        Ok(Sha1::digest(&buf[..]).into())
    })
}

/// Opens every input for reading.
fn open_all(inputs: &[Input]) -> Result<Vec<File>, CreateError> {
    inputs
        .iter()
        .map(|i| File::open(&i.path).map_err(|e| io(&i.path, e)))
        .collect()
}

/// Fills `dst` from `file` (`input`'s) at `offset`; a file now shorter than listed has changed.
fn read_at(file: &File, input: &Input, dst: &mut [u8], offset: u64) -> Result<(), CreateError> {
    file.read_exact_at(dst, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            CreateError::Changed(input.path.display().to_string())
        } else {
            io(&input.path, e)
        }
    })
}

/// Runs `work(i, buffer)` for every `i` in `0..count` on `threads` threads (0: every core), each
/// thread reusing one buffer, so memory stays at a piece per thread; `progress` gets the number done.
/// Stops at the first error and returns it; else the results in order.
fn parallel<T, F>(
    count: usize,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
    work: F,
) -> Result<Vec<T>, CreateError>
where
    T: Copy + Default + Send,
    F: Fn(usize, &mut Vec<u8>) -> Result<T, CreateError> + Sync,
{
    let results = Mutex::new(vec![T::default(); count]);
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
        for _ in 0..threads.min(count.max(1)) {
            scope.spawn(|| {
                let mut buf = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    match work(i, &mut buf) {
                        Ok(r) => results.lock().unwrap_or_else(|p| p.into_inner())[i] = r,
                        Err(e) => {
                            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            stop.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                    progress(done.fetch_add(1, Ordering::Relaxed) as u64 + 1);
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(results.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// The `info` of a v1 torrent (`private` is added by the caller).
fn info_v1(
    name: &str,
    single: bool,
    inputs: &[Input],
    piece_length: u32,
    hashes: &[[u8; 20]],
) -> Value {
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
            .map(|i| file_entry(&i.rel, i.len, false))
            .collect();
        info.insert("files", Value::List(files));
    }
    info
}

/// One entry of a v1 `files` list; a pad file (BEP 47) has `attr` `p`.
fn file_entry(path: &[String], len: u64, pad: bool) -> Value {
    let mut entry = Value::dict([
        ("length", Value::Int(len as i64)),
        (
            "path",
            Value::List(path.iter().map(|c| Value::str(c)).collect()),
        ),
    ]);
    if pad {
        entry.insert("attr", Value::str("p"));
    }
    entry
}

/// The whole torrent: `info`, the v2 `piece layers` if any, trackers, web seeds, comment, creator and
/// date.
fn wrap(info: Value, layers: Option<Value>, opts: &CreateOptions) -> Vec<u8> {
    let mut torrent = Value::dict([
        ("info", info),
        (
            "created by",
            Value::str(concat!("pixtorrent ", env!("CARGO_PKG_VERSION"))),
        ),
    ]);
    if let Some(layers) = layers {
        torrent.insert("piece layers", layers);
    }
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
