//! Test-only: builds a valid multi-file torrent around given file contents, for the storage and
//! session tests.

use sha1::{Digest, Sha1};

use super::Metainfo;
use crate::bencode::Value;

/// A multi-file torrent `name` holding `files` (path with `/`, contents), and its byte stream.
pub fn multi_file(name: &str, files: &[(&str, Vec<u8>)], piece_len: u32) -> (Metainfo, Vec<u8>) {
    let stream: Vec<u8> = files.iter().flat_map(|(_, d)| d.iter().copied()).collect();
    let pieces: Vec<u8> = stream
        .chunks(piece_len as usize)
        .flat_map(|c| Sha1::digest(c).to_vec())
        .collect();
    let list = files
        .iter()
        .map(|(path, data)| {
            Value::dict([
                ("length", Value::Int(data.len() as i64)),
                (
                    "path",
                    Value::List(path.split('/').map(Value::str).collect()),
                ),
            ])
        })
        .collect();
    let info = Value::dict([
        ("name", Value::str(name)),
        ("piece length", Value::Int(i64::from(piece_len))),
        ("pieces", Value::Bytes(pieces)),
        ("files", Value::List(list)),
    ]);
    let torrent = Value::dict([
        ("announce", Value::str("http://127.0.0.1:1/announce")),
        ("info", info),
    ]);
    let meta = Metainfo::from_bytes(&torrent.encode()).expect("testkit torrent is valid");
    (meta, stream)
}

/// `n` bytes of a fixed pseudo-random pattern seeded by `seed`.
pub fn bytes(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
