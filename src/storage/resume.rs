//! Fast resume: which pieces were verified, with each file's size and modification time when they
//! were, in a small file per torrent and output directory (in the state directory, see
//! [`crate::paths`]). On start, a piece is trusted without hashing only if the file says it was
//! verified and every file it touches still has the recorded size and mtime. A file changed in
//! either way is re-checked. The format is a bencoded dictionary followed by the SHA-1 of its bytes,
//! so a truncated or damaged file is detected and ignored (the caller re-checks everything).
//! Writes go to a temporary file that is synced and renamed over the old one, so a `kill -9` leaves
//! either the old file or the new one, never a mix.

use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use super::Layout;
use crate::bencode::{decode, Limits, Value};
use crate::bitfield::Bitfield;
use crate::types::InfoHash;

/// The format version written.
const VERSION: i64 = 1;
/// Largest resume file read: a bitfield of 64 Mi pieces and 100k files fit well below it.
const MAX_LEN: usize = 16 << 20;

/// A file's size and modification time (nanoseconds since the epoch); `None` when it is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

/// What one resume file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The output directory, as given to [`path_for`].
    pub dir: String,
    /// Pieces verified when the file was written.
    pub verified: Bitfield,
    /// Each file's stamp when the file was written (in the torrent's order, pad files included).
    pub files: Vec<Option<Stamp>>,
}

/// Why a resume file was not used (each means: re-check everything).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// Truncated, damaged, or not a resume file.
    #[error("resume data is damaged")]
    Corrupt,
    /// Written for another torrent.
    #[error("resume data is for another torrent")]
    OtherTorrent,
    /// Written for another output directory.
    #[error("resume data is for another directory")]
    OtherDirectory,
    /// The piece or file count does not match the torrent.
    #[error("resume data does not fit the torrent")]
    Shape,
}

/// The resume file of `info_hash` downloaded into `dir`, under the state directory `state`.
pub fn path_for(state: &Path, info_hash: InfoHash, dir: &str) -> PathBuf {
    let d = Sha1::digest(dir.as_bytes());
    let tag: String = d[..4].iter().map(|b| format!("{b:02x}")).collect();
    state
        .join("resume")
        .join(format!("{info_hash}-{tag}.resume"))
}

/// The file's bytes: the bencoded record, then the SHA-1 of those bytes.
pub fn encode(r: &Resume) -> Vec<u8> {
    let files = r
        .files
        .iter()
        .map(|f| match f {
            Some(s) => Value::List(vec![
                Value::Int(i64::try_from(s.size).unwrap_or(i64::MAX)),
                Value::Int(s.mtime_ns),
            ]),
            None => Value::List(Vec::new()),
        })
        .collect();
    let mut out = Value::dict([
        ("dir", Value::Bytes(r.dir.as_bytes().to_vec())),
        ("files", Value::List(files)),
        ("info-hash", Value::Bytes(r.info_hash.0.to_vec())),
        ("pieces", Value::Int(i64::from(r.verified.len()))),
        ("verified", Value::Bytes(r.verified.as_bytes().to_vec())),
        ("version", Value::Int(VERSION)),
    ])
    .encode();
    let check = Sha1::digest(&out);
    out.extend_from_slice(&check);
    out
}

/// Reads a resume file's bytes for `info_hash` in `dir`, a torrent of `pieces` pieces and `files`
/// files.
pub fn parse(
    bytes: &[u8],
    info_hash: InfoHash,
    dir: &str,
    pieces: u32,
    files: usize,
) -> Result<Resume, ResumeError> {
    if bytes.len() < 20 || bytes.len() > MAX_LEN {
        return Err(ResumeError::Corrupt);
    }
    let (body, check) = bytes.split_at(bytes.len() - 20);
    if Sha1::digest(body).as_slice() != check {
        return Err(ResumeError::Corrupt);
    }
    let limits = Limits {
        max_len: MAX_LEN,
        max_depth: 4,
        max_items: 4 * files + 64,
        max_tree_bytes: 4 * MAX_LEN,
    };
    let doc = decode(body, limits).map_err(|_| ResumeError::Corrupt)?;
    let root = doc.root();
    let int = |k: &[u8]| root.get(k).and_then(|n| n.as_int());
    let bytes_of = |k: &[u8]| root.get(k).and_then(|n| n.as_bytes());
    if int(b"version") != Some(VERSION) {
        return Err(ResumeError::Corrupt);
    }
    if bytes_of(b"info-hash") != Some(&info_hash.0[..]) {
        return Err(ResumeError::OtherTorrent);
    }
    if bytes_of(b"dir") != Some(dir.as_bytes()) {
        return Err(ResumeError::OtherDirectory);
    }
    if int(b"pieces") != Some(i64::from(pieces)) {
        return Err(ResumeError::Shape);
    }
    let verified = bytes_of(b"verified")
        .and_then(|b| Bitfield::from_bytes(b, pieces))
        .ok_or(ResumeError::Shape)?;
    let list = root
        .get(b"files")
        .and_then(|n| n.as_list())
        .ok_or(ResumeError::Corrupt)?;
    let mut stamps = Vec::with_capacity(files);
    for f in list {
        let parts: Vec<i64> = f
            .as_list()
            .ok_or(ResumeError::Corrupt)?
            .map(|n| n.as_int().ok_or(ResumeError::Corrupt))
            .collect::<Result<_, _>>()?;
        stamps.push(match parts[..] {
            [] => None,
            [size, mtime_ns] => Some(Stamp {
                size: u64::try_from(size).map_err(|_| ResumeError::Corrupt)?,
                mtime_ns,
            }),
            _ => return Err(ResumeError::Corrupt),
        });
    }
    if stamps.len() != files {
        return Err(ResumeError::Shape);
    }
    Ok(Resume {
        info_hash,
        dir: dir.to_string(),
        verified,
        files: stamps,
    })
}

/// The pieces to trust without hashing: verified in `saved` and touching only files whose stamp
/// is unchanged in `now` (pad files are never read, so they never disqualify a piece).
pub fn trusted(saved: &Resume, now: &[Option<Stamp>], layout: &Layout) -> Bitfield {
    let mut trusted = saved.verified.clone();
    for (i, slot) in layout.files().iter().enumerate() {
        if slot.pad {
            continue;
        }
        let same =
            matches!((saved.files.get(i), now.get(i)), (Some(Some(a)), Some(Some(b))) if a == b);
        if !same {
            for p in layout.pieces_of_file(i) {
                trusted.clear(p);
            }
        }
    }
    trusted
}

/// The stamp of the file at `path` (`None`: absent or unreadable).
pub fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta.modified().ok()?;
    let ns = match mtime.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).ok()?,
        Err(e) => -i64::try_from(e.duration().as_nanos()).ok()?,
    };
    Some(Stamp {
        size: meta.len(),
        mtime_ns: ns,
    })
}

/// Reads the resume file at `path` (`Ok(None)`: there is none).
pub fn load(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
        Ok(m) if m.len() > MAX_LEN as u64 => return Ok(Some(Vec::new())),
        Ok(_) => {}
    }
    std::fs::read(path).map(Some)
}

/// Writes `r` to `path` atomically: a temporary file, synced, renamed over the old one, and the
/// directory synced.
pub fn save(path: &Path, r: &Resume) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&encode(r))?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::layout::FileSlot;
    use crate::types::Lengths;

    fn sample() -> Resume {
        let mut verified = Bitfield::new(10);
        for i in [0, 1, 2, 5, 9] {
            verified.set(i);
        }
        Resume {
            info_hash: InfoHash([7; 20]),
            dir: "/data/dl".into(),
            verified,
            files: vec![
                Some(Stamp {
                    size: 3000,
                    mtime_ns: 1_700_000_000_123_456_789,
                }),
                None,
                Some(Stamp {
                    size: 7000,
                    mtime_ns: -5,
                }),
            ],
        }
    }

    fn parse_sample(bytes: &[u8]) -> Result<Resume, ResumeError> {
        parse(bytes, InfoHash([7; 20]), "/data/dl", 10, 3)
    }

    #[test]
    fn round_trips() {
        let r = sample();
        assert_eq!(parse_sample(&encode(&r)), Ok(r));
    }

    #[test]
    fn truncated_damaged_or_foreign_files_are_refused() {
        let bytes = encode(&sample());
        for cut in [0, 1, 19, 20, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(
                parse_sample(&bytes[..cut]),
                Err(ResumeError::Corrupt),
                "cut {cut}"
            );
        }
        for at in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            assert_eq!(parse_sample(&bad), Err(ResumeError::Corrupt), "flip {at}");
        }
        assert_eq!(
            parse_sample(b"not a resume file at all, not one"),
            Err(ResumeError::Corrupt)
        );
        let other = parse(&bytes, InfoHash([8; 20]), "/data/dl", 10, 3);
        assert_eq!(other, Err(ResumeError::OtherTorrent));
        let elsewhere = parse(&bytes, InfoHash([7; 20]), "/data/other", 10, 3);
        assert_eq!(elsewhere, Err(ResumeError::OtherDirectory));
        assert_eq!(
            parse(&bytes, InfoHash([7; 20]), "/data/dl", 11, 3),
            Err(ResumeError::Shape)
        );
        assert_eq!(
            parse(&bytes, InfoHash([7; 20]), "/data/dl", 10, 4),
            Err(ResumeError::Shape)
        );
    }

    #[test]
    fn only_pieces_of_unchanged_files_are_trusted() {
        // Pieces of 1000 bytes over files of 2500, 0 (empty), 1000 (pad) and 4500 bytes.
        let lengths = Lengths::new(8000, 1000).unwrap();
        let slot = |offset, length, pad| FileSlot {
            offset,
            length,
            pad,
        };
        let layout = Layout::from_files(
            lengths,
            vec![
                slot(0, 2500, false),
                slot(2500, 0, false),
                slot(2500, 1000, true),
                slot(3500, 4500, false),
            ],
        );
        let s = |size, mtime_ns| Some(Stamp { size, mtime_ns });
        let saved = Resume {
            info_hash: InfoHash([1; 20]),
            dir: "d".into(),
            verified: Bitfield::full(8),
            files: vec![s(2500, 1), s(0, 1), None, s(4500, 1)],
        };
        let same = saved.files.clone();
        assert_eq!(trusted(&saved, &same, &layout), Bitfield::full(8));
        // A same-size edit shows in the mtime: that file's pieces, and the boundary piece it shares
        // with the next file, are re-checked; the rest is trusted.
        let edited = vec![s(2500, 2), s(0, 1), None, s(4500, 1)];
        let t = trusted(&saved, &edited, &layout);
        assert_eq!(t.ones().collect::<Vec<_>>(), [3, 4, 5, 6, 7]);
        // A truncated last file, and a file gone.
        let truncated = vec![s(2500, 1), s(0, 1), None, s(4000, 1)];
        assert_eq!(
            trusted(&saved, &truncated, &layout)
                .ones()
                .collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let gone = vec![None, s(0, 1), None, s(4500, 1)];
        assert_eq!(
            trusted(&saved, &gone, &layout).ones().collect::<Vec<_>>(),
            [3, 4, 5, 6, 7]
        );
        // Only what was verified is ever trusted.
        let mut partial = saved.clone();
        partial.verified = Bitfield::new(8);
        partial.verified.set(4);
        assert_eq!(
            trusted(&partial, &same, &layout).ones().collect::<Vec<_>>(),
            [4]
        );
    }

    #[test]
    fn saved_atomically_and_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), InfoHash([7; 20]), "/data/dl");
        assert_eq!(load(&path).unwrap(), None);
        save(&path, &sample()).unwrap();
        let bytes = load(&path).unwrap().unwrap();
        assert_eq!(parse_sample(&bytes), Ok(sample()));
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
        assert_ne!(path, path_for(dir.path(), InfoHash([7; 20]), "/data/other"));
    }
}
