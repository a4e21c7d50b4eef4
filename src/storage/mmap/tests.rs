//! Tests of the mmap storage on real files in a temporary directory.

use super::*;
use crate::metainfo::testkit::{bytes, multi_file};
use crate::storage::recheck;

fn sample() -> (crate::metainfo::Metainfo, Vec<u8>) {
    multi_file(
        "item",
        &[
            ("big.bin", bytes(70_000, 1)),
            ("empty.txt", Vec::new()),
            ("sub/a.txt", bytes(5, 2)),
            ("sub/b.xml", bytes(16_385, 3)),
            ("c", bytes(1, 4)),
        ],
        32_768,
    )
}

fn write_all(s: &MmapStorage, stream: &[u8]) {
    let lengths = s.layout().lengths();
    for p in lengths.pieces() {
        let off = lengths.piece_offset(p) as usize;
        let len = lengths.piece_len(p) as usize;
        s.write_piece(p, &stream[off..off + len]).unwrap();
    }
}

#[test]
fn creates_every_file_at_full_size_including_empty_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, _) = sample();
    let opened = MmapStorage::open(dir.path(), &meta.info).unwrap();
    assert_eq!(opened.maybe_present.count(), 0);
    for (path, len) in [
        ("item/big.bin", 70_000),
        ("item/empty.txt", 0),
        ("item/sub/a.txt", 5),
        ("item/sub/b.xml", 16_385),
        ("item/c", 1),
    ] {
        let m = std::fs::metadata(dir.path().join(path)).unwrap();
        assert_eq!(m.len(), len, "{path}");
    }
}

#[test]
fn pieces_written_read_back_and_land_in_the_right_files() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, stream) = sample();
    let s = MmapStorage::open(dir.path(), &meta.info).unwrap().storage;
    write_all(&s, &stream);
    // Read across a file boundary: the last bytes of big.bin and the first of sub/a.txt.
    let lengths = s.layout().lengths();
    let p2 = lengths.piece(2).unwrap(); // bytes 65536..: big.bin tail, a.txt, b.xml...
    let mut buf = vec![0u8; 4470];
    s.read(p2, 0, &mut buf).unwrap();
    assert_eq!(&buf[..], &stream[65_536..65_536 + 4470]);
    s.flush().unwrap();
    drop(s);
    let files = [
        ("item/big.bin", 0..70_000),
        ("item/sub/a.txt", 70_000..70_005),
        ("item/sub/b.xml", 70_005..86_390),
        ("item/c", 86_390..86_391),
    ];
    for (path, range) in files {
        assert_eq!(
            std::fs::read(dir.path().join(path)).unwrap(),
            &stream[range],
            "{path}"
        );
    }
}

#[test]
fn reopening_finds_what_was_written_and_recheck_confirms_it() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, stream) = sample();
    {
        let s = MmapStorage::open(dir.path(), &meta.info).unwrap().storage;
        let lengths = s.layout().lengths();
        let p0 = lengths.piece(0).unwrap();
        s.write_piece(p0, &stream[..32_768]).unwrap();
    }
    let opened = MmapStorage::open(dir.path(), &meta.info).unwrap();
    // big.bin pre-existed with data; every piece touching it is a candidate.
    assert!(opened.maybe_present.get(0) && opened.maybe_present.get(2));
    let good = recheck(
        &opened.storage,
        &meta.info.piece_hashes,
        &opened.maybe_present,
        2,
    );
    assert_eq!(good.ones().collect::<Vec<_>>(), vec![0]);
}

#[test]
fn a_directory_in_the_way_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, _) = sample();
    std::fs::create_dir_all(dir.path().join("item/c")).unwrap();
    let err = MmapStorage::open(dir.path(), &meta.info).err().unwrap();
    assert!(matches!(err, StorageError::InTheWay(_)), "{err}");
    // A file where a directory must go.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("item")).unwrap();
    std::fs::write(dir.path().join("item/sub"), b"x").unwrap();
    let err = MmapStorage::open(dir.path(), &meta.info).err().unwrap();
    assert!(
        matches!(err, StorageError::InTheWay(_) | StorageError::Io { .. }),
        "{err}"
    );
}

#[test]
fn page_arithmetic() {
    let page = page_size();
    assert_eq!(inner_pages(0, page * 2), Some((0, page as usize * 2)));
    assert_eq!(
        inner_pages(1, page * 2),
        Some((page as usize, page as usize))
    );
    assert_eq!(inner_pages(1, page), None);
}
