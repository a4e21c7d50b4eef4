//! A deterministic, Internet-Archive-shaped multi-file payload and its `.torrent`: one large file, small
//! files of odd sizes (some in a subdirectory), a zero-length file, 512 KiB pieces (or a piece length
//! of the test's choice); and a byte-for-byte tree comparison.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use pixtorrent::bencode::Value;
use pixtorrent::types::InfoHash;
use sha1::{Digest, Sha1};

/// About 8 MB: quick tests.
pub const SMALL: u64 = 8_000_011;
/// About 64 MB: the standard interop payload.
pub const STANDARD: u64 = 64_000_003;
/// About 1.1 GB: benchmarks.
pub const BIG: u64 = 1_100_000_007;

/// The piece length, as the Internet Archive uses for items of this size.
pub const PIECE_LENGTH: u32 = 512 * 1024;

/// The torrent's `name`: the top directory of every file.
pub const NAME: &str = "IA_Item";

/// The file whose length absorbs the rest of the requested total.
const LARGE: &str = "Content/IA_Item.mp4";

/// The files in torrent order (paths relative to [`NAME`]), `None` for the large one. Several tiny
/// files in a row make pieces that span three or more files; the empty file sits between two others.
const LAYOUT: &[(&str, Option<u64>)] = &[
    ("IA_Item_meta.xml", Some(777)),
    ("__ia_thumb.jpg", Some(16_385)),
    ("IA_Item_files.xml", Some(1)),
    ("IA_Item_meta.sqlite", Some(65_537)),
    (LARGE, None),
    ("Content/IA_Item.txt", Some(0)),
    ("Content/IA_Item.ogv", Some(3_000_001)),
    ("Content/IA_Item.gif", Some(524_289)),
    ("Content/IA_Item_512kb.mp4", Some(1_048_575)),
    ("IA_Item_archive.torrent", Some(12_345)),
];

/// [`Payload::with_piece_length`]'s files: the same names, fewer of them.
const SHORT_LAYOUT: &[(&str, Option<u64>)] = &[
    ("IA_Item_meta.xml", Some(777)),
    ("__ia_thumb.jpg", Some(16_385)),
    (LARGE, None),
    ("Content/IA_Item.txt", Some(0)),
];

/// A payload on disk and a torrent describing it.
pub struct Payload {
    /// The `.torrent` written by [`Payload::generate`].
    pub torrent: PathBuf,
    /// SHA-1 of the info dictionary; the same for every torrent [`Payload::torrent_with`] writes.
    pub info_hash: InfoHash,
    /// The directory that holds `IA_Item/` (the "save path" or "download dir" a seeder is given).
    pub save_dir: PathBuf,
    /// Every file, relative to [`Payload::root`], with its length, in torrent order.
    pub files: Vec<(PathBuf, u64)>,
    /// Sum of the file lengths.
    pub total: u64,
    /// Bytes per piece.
    pub piece_length: u32,
    info: Value,
}

impl Payload {
    /// Writes about `total` bytes (at least the small files plus one byte) under `dir/seed/IA_Item/` and
    /// the torrent, announcing to `announce`, as `dir/IA_Item.torrent`. The content depends only on
    /// `total`: the same call gives the same bytes and the same info-hash.
    pub fn generate(dir: &Path, total: u64, announce: &str) -> Payload {
        Self::generate_layout(dir, LAYOUT, total, PIECE_LENGTH, announce)
    }

    /// Like [`Payload::generate`] with pieces of `piece_length` bytes and a shorter layout (a metadata
    /// file, a thumbnail, the large file, a zero-length file), so that a few megabytes make a payload:
    /// e.g. 65 pieces of 64 KiB.
    pub fn with_piece_length(dir: &Path, total: u64, piece_length: u32, announce: &str) -> Payload {
        Self::generate_layout(dir, SHORT_LAYOUT, total, piece_length, announce)
    }

    fn generate_layout(
        dir: &Path,
        layout: &[(&str, Option<u64>)],
        total: u64,
        piece_length: u32,
        announce: &str,
    ) -> Payload {
        let fixed: u64 = layout.iter().filter_map(|(_, len)| *len).sum();
        assert!(total > fixed, "a payload needs more than {fixed} bytes");
        let save_dir = dir.join("seed");
        let root = save_dir.join(NAME);
        let mut hasher = PieceHasher::new(piece_length);
        let mut files = Vec::new();
        for (index, (rel, len)) in layout.iter().enumerate() {
            let len = len.unwrap_or(total - fixed);
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            write_random_file(&path, len, index as u64, &mut hasher);
            files.push((PathBuf::from(rel), len));
        }
        let pieces = hasher.finish();
        let file_list = files
            .iter()
            .map(|(rel, len)| {
                let parts = rel
                    .iter()
                    .map(|p| Value::str(p.to_str().unwrap()))
                    .collect();
                Value::dict([
                    ("length", Value::Int(*len as i64)),
                    ("path", Value::List(parts)),
                ])
            })
            .collect();
        let info = Value::dict([
            ("files", Value::List(file_list)),
            ("name", Value::str(NAME)),
            ("piece length", Value::Int(i64::from(piece_length))),
            ("pieces", Value::Bytes(pieces)),
        ]);
        let info_hash = InfoHash(Sha1::digest(info.encode()).into());
        let mut payload = Payload {
            torrent: PathBuf::new(),
            info_hash,
            save_dir,
            files,
            total,
            piece_length,
            info,
        };
        payload.torrent = payload.torrent_with(&dir.join(format!("{NAME}.torrent")), announce);
        payload
    }

    /// Rewrites [`Payload::torrent`] to announce to `announce` instead (the info-hash stays).
    pub fn set_announce(&mut self, announce: &str) {
        let path = self.torrent.clone();
        self.torrent_with(&path, announce);
    }

    /// The top directory of the files: `save_dir/IA_Item`.
    pub fn root(&self) -> PathBuf {
        self.save_dir.join(NAME)
    }

    /// The torrent's name (the files' top directory).
    pub fn name(&self) -> &'static str {
        NAME
    }

    /// How many pieces the torrent has.
    pub fn piece_count(&self) -> u64 {
        self.total.div_ceil(u64::from(self.piece_length))
    }

    /// Writes a torrent with the same info dictionary (so the same info-hash) announcing to `announce`
    /// at `path`, checks that pixtorrent parses it to the expected info-hash, and returns `path`.
    pub fn torrent_with(&self, path: &Path, announce: &str) -> PathBuf {
        let torrent = Value::dict([
            ("announce", Value::str(announce)),
            ("comment", Value::str("pixtorrent test payload")),
            ("created by", Value::str("pixtorrent tests")),
            ("creation date", Value::Int(1_700_000_000)),
            ("info", self.info.clone()),
        ]);
        let bytes = torrent.encode();
        let meta = pixtorrent::metainfo::Metainfo::from_bytes(&bytes).expect("parse own torrent");
        assert_eq!(meta.info_hash, self.info_hash, "info-hash of {path:?}");
        std::fs::write(path, bytes).unwrap();
        path.to_path_buf()
    }
}

impl Payload {
    /// The same torrent (same info-hash) with no tracker at all, as `The WIRED CD` is, at `path`.
    pub fn trackerless_torrent(&self, path: &Path) -> PathBuf {
        std::fs::write(path, Value::dict([("info", self.info.clone())]).encode()).unwrap();
        path.to_path_buf()
    }

    /// The same files as a private torrent (BEP 27: `private` 1 in the info dictionary, so another
    /// info-hash) with no tracker, at `path`; returns its info-hash.
    pub fn private_torrent(&self, path: &Path) -> InfoHash {
        let mut info = self.info.clone();
        info.insert("private", Value::Int(1));
        let bytes = Value::dict([("info", info)]).encode();
        let meta = pixtorrent::metainfo::Metainfo::from_bytes(&bytes).expect("parse own torrent");
        assert!(meta.info.private);
        std::fs::write(path, bytes).unwrap();
        meta.info_hash
    }

    /// Like [`Payload::torrent_with`], with one tier per tracker URL (`announce` is the first) and a
    /// `url-list` of `web_seeds`.
    pub fn torrent_with_tiers(&self, path: &Path, tiers: &[&str], web_seeds: &[&str]) -> PathBuf {
        self.torrent_with(path, tiers.first().copied().unwrap_or(""));
        let mut torrent = Value::dict([
            ("announce", Value::str(tiers.first().copied().unwrap_or(""))),
            ("info", self.info.clone()),
        ]);
        let list = tiers
            .iter()
            .map(|u| Value::List(vec![Value::str(u)]))
            .collect();
        torrent.insert("announce-list", Value::List(list));
        if !web_seeds.is_empty() {
            let urls = web_seeds.iter().map(|u| Value::str(u)).collect();
            torrent.insert("url-list", Value::List(urls));
        }
        std::fs::write(path, torrent.encode()).unwrap();
        path.to_path_buf()
    }
}

/// SHA-1 of consecutive `piece_length` chunks of a byte stream that crosses file boundaries.
struct PieceHasher {
    piece_length: usize,
    current: Sha1,
    filled: usize,
    out: Vec<u8>,
}

impl PieceHasher {
    fn new(piece_length: u32) -> PieceHasher {
        PieceHasher {
            piece_length: piece_length as usize,
            current: Sha1::new(),
            filled: 0,
            out: Vec::new(),
        }
    }

    fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = bytes.len().min(self.piece_length - self.filled);
            self.current.update(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled == self.piece_length {
                let digest = std::mem::replace(&mut self.current, Sha1::new()).finalize();
                self.out.extend_from_slice(&digest);
                self.filled = 0;
            }
        }
    }

    /// The concatenated piece hashes (the last piece may be short).
    fn finish(mut self) -> Vec<u8> {
        if self.filled > 0 {
            self.out.extend_from_slice(&self.current.finalize());
        }
        self.out
    }
}

/// SplitMix64: a fast, well-mixed PRNG; a different seed per file keeps files distinct.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn write_random_file(path: &Path, len: u64, seed: u64, hasher: &mut PieceHasher) {
    const CHUNK: usize = 1 << 20;
    let mut rng = SplitMix64(0x5049_5854_4f52_5245 ^ seed.wrapping_mul(0x1000_0000_01b3));
    let mut out = BufWriter::new(File::create(path).unwrap());
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let n = CHUNK.min(left as usize);
        for word in buf[..n].chunks_mut(8) {
            let bytes = rng.next().to_le_bytes();
            word.copy_from_slice(&bytes[..word.len()]);
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    out.flush().unwrap();
}

/// Every regular file under `root`, relative to it, sorted.
fn list_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}")) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Panics unless `actual_root` holds exactly the files of `expected_root` (zero-length ones included),
/// each byte-for-byte identical; the message names the first difference.
pub fn assert_same_tree(expected_root: &Path, actual_root: &Path) {
    assert!(
        actual_root.is_dir(),
        "{actual_root:?} does not exist or is not a directory"
    );
    let expected = list_files(expected_root);
    let actual = list_files(actual_root);
    let missing: Vec<_> = expected.iter().filter(|p| !actual.contains(p)).collect();
    let extra: Vec<_> = actual.iter().filter(|p| !expected.contains(p)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "file lists differ under {actual_root:?}: missing {missing:?}, unexpected {extra:?}"
    );
    for rel in &expected {
        assert_same_file(&expected_root.join(rel), &actual_root.join(rel));
    }
}

fn assert_same_file(expected: &Path, actual: &Path) {
    let (want_len, got_len) = (
        std::fs::metadata(expected).unwrap().len(),
        std::fs::metadata(actual).unwrap().len(),
    );
    assert_eq!(got_len, want_len, "length of {actual:?}");
    let (mut a, mut b) = (File::open(expected).unwrap(), File::open(actual).unwrap());
    let (mut buf_a, mut buf_b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    while offset < want_len {
        let n = (want_len - offset).min(buf_a.len() as u64) as usize;
        a.read_exact(&mut buf_a[..n]).unwrap();
        b.read_exact(&mut buf_b[..n]).unwrap();
        if buf_a[..n] != buf_b[..n] {
            let i = (0..n).find(|&i| buf_a[i] != buf_b[i]).unwrap_or(0);
            panic!(
                "{actual:?} differs from {expected:?} at byte {}",
                offset + i as u64
            );
        }
        offset += n as u64;
    }
}
