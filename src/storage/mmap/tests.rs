//! Tests of the mmap storage on real files in a temporary directory.

use super::*;
use crate::metainfo::testkit::{bytes, multi_file};
use crate::storage::{recheck, PieceCheck};

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
        &PieceCheck::v1(meta.info.piece_hashes.clone()),
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
    let page = sigbus::page_size() as u64;
    assert_eq!(inner_pages(0, page * 2), Some((0, page as usize * 2)));
    assert_eq!(
        inner_pages(1, page * 2),
        Some((page as usize, page as usize))
    );
    assert_eq!(inner_pages(1, page), None);
}

/// The first piece of the layout that lies wholly in file `file`.
fn piece_inside(s: &MmapStorage, file: usize) -> PieceIndex {
    let layout = s.layout();
    layout
        .pieces_of_file(file)
        .filter_map(|i| layout.lengths().piece(i))
        .find(|&p| layout.spans(p).all(|span| span.file == file))
        .expect("a piece inside the file")
}

fn piece_bytes<'a>(s: &MmapStorage, stream: &'a [u8], p: PieceIndex) -> &'a [u8] {
    let lengths = s.layout().lengths();
    let off = lengths.piece_offset(p) as usize;
    &stream[off..off + lengths.piece_len(p) as usize]
}

#[test]
fn a_file_truncated_by_another_program_fails_its_writes_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, stream) = multi_file(
        "item",
        &[("a.bin", bytes(300_000, 1)), ("b.bin", bytes(300_000, 2))],
        32_768,
    );
    let s = MmapStorage::open(dir.path(), &meta.info).unwrap().storage;
    let a = dir.path().join("item/a.bin");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&a)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let pa = piece_inside(&s, 0);
    let err = s.write_piece(pa, piece_bytes(&s, &stream, pa)).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Truncated {
                now: 1000,
                expected: 300_000,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with(&a.display().to_string()) && msg.contains("truncated by another program"),
        "{msg}"
    );
    // Every later write into that file fails too (its mapping holds throwaway pages now)...
    let last = s.layout().lengths().piece(8).unwrap(); // 262144..294912: inside a.bin
    assert!(s.write_piece(last, piece_bytes(&s, &stream, last)).is_err());
    // ...while the other file takes its pieces and keeps them.
    let pb = piece_inside(&s, 1);
    s.write_piece(pb, piece_bytes(&s, &stream, pb)).unwrap();
    let mut back = vec![0u8; piece_bytes(&s, &stream, pb).len()];
    s.read(pb, 0, &mut back).unwrap();
    assert_eq!(back, piece_bytes(&s, &stream, pb));
    // Reading past the new end names the truncation too.
    let err = s.read(last, 0, &mut [0u8; 16]).unwrap_err();
    assert!(matches!(err, StorageError::Truncated { .. }), "{err:?}");
}

#[test]
fn writers_of_other_files_are_unaffected_by_a_fault_at_the_same_time() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, stream) = multi_file(
        "item",
        &[("a.bin", bytes(1 << 20, 1)), ("b.bin", bytes(1 << 20, 2))],
        32_768,
    );
    let s = MmapStorage::open(dir.path(), &meta.info).unwrap().storage;
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("item/a.bin"))
        .unwrap()
        .set_len(0)
        .unwrap();
    let lengths = s.layout().lengths();
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            barrier.wait();
            for p in (0..32).filter_map(|i| lengths.piece(i)) {
                assert!(s.write_piece(p, piece_bytes(&s, &stream, p)).is_err());
            }
        });
        scope.spawn(|| {
            barrier.wait();
            for p in (32..64).filter_map(|i| lengths.piece(i)) {
                s.write_piece(p, piece_bytes(&s, &stream, p)).unwrap();
            }
        });
    });
    s.flush().unwrap_err(); // a.bin is short
    assert_eq!(
        std::fs::read(dir.path().join("item/b.bin")).unwrap(),
        &stream[1 << 20..]
    );
}

#[test]
fn flush_reports_a_file_truncated_after_its_last_write() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, stream) = sample();
    let s = MmapStorage::open(dir.path(), &meta.info).unwrap().storage;
    write_all(&s, &stream);
    s.flush().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("item/sub/b.xml"))
        .unwrap()
        .set_len(10)
        .unwrap();
    let err = s.flush().unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Truncated {
                now: 10,
                expected: 16_385,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_fault_in_a_file_still_at_full_size_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    let (m, _) = open_file(&path, 100_000, true).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let err = m.fault(&file);
    assert!(matches!(err, StorageError::WriteFault { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: input/output error", path.display())),
        "{msg}"
    );
}

#[test]
fn a_selection_allocates_selected_files_leaves_boundary_files_sparse_and_skips_the_rest() {
    use crate::select::{Glob, Selection, Spec};
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    // Pieces of 32 KiB: a = pieces 0-3, b = pieces 3-4, c = pieces 4-7.
    let (meta, stream) = multi_file(
        "item",
        &[
            ("a.bin", bytes(100_000, 1)),
            ("b.bin", bytes(50_000, 2)),
            ("c/c.bin", bytes(100_000, 3)),
            ("empty", Vec::new()),
        ],
        32_768,
    );
    let spec = Spec {
        only: vec![Glob::new("a.bin").unwrap()],
        ..Spec::default()
    };
    let sel = Selection::resolve(&spec, &meta.info.files, meta.info.lengths).unwrap();
    let s = MmapStorage::open_selected(
        dir.path(),
        &meta.info,
        sel.roles(),
        crate::storage::pool::FilePool::new(4),
    )
    .unwrap()
    .storage;
    assert!(
        !dir.path().join("item/c").exists(),
        "a skipped file's directory is not made"
    );
    assert!(!dir.path().join("item/empty").exists());
    let a = std::fs::metadata(dir.path().join("item/a.bin")).unwrap();
    assert_eq!(a.len(), 100_000);
    // The boundary piece 3 holds the end of a.bin and the start of b.bin.
    let lengths = meta.info.lengths;
    for p in sel.wanted().ones() {
        let p = lengths.piece(p).unwrap();
        let off = lengths.piece_offset(p) as usize;
        s.write_piece(p, &stream[off..off + lengths.piece_len(p) as usize])
            .unwrap();
    }
    s.flush().unwrap();
    let b = std::fs::metadata(dir.path().join("item/b.bin")).unwrap();
    assert_eq!(b.len(), 50_000, "sized, so offsets hold");
    // Only b's part of piece 3 (131072 - 100000 = 31072 bytes) was written: about 8 pages of 4 KiB.
    assert!(
        b.blocks() * 512 <= 40_960,
        "b.bin is sparse: {} bytes allocated",
        b.blocks() * 512
    );
    let got = std::fs::read(dir.path().join("item/b.bin")).unwrap();
    assert_eq!(&got[..31_072], &stream[100_000..131_072]);
    // A piece reaching the skipped file is refused, naming it.
    let mut buf = vec![0u8; 16];
    let err = s.read(lengths.piece(5).unwrap(), 0, &mut buf).unwrap_err();
    assert!(err.to_string().contains("c.bin"), "{err}");
    assert!(s
        .write_piece(lengths.piece(6).unwrap(), &vec![0; 32_768])
        .is_err());
    // The re-check reads the storable pieces only as far as they are on disk.
    let have = recheck(
        &s,
        &PieceCheck::v1(meta.info.piece_hashes.clone()),
        sel.storable(),
        2,
    );
    assert_eq!(have.ones().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
}

#[test]
fn pages_a_write_touches() {
    let page = sigbus::page_size() as u64;
    assert_eq!(outer_pages(0, 1, 10 * page), Some((0, page as usize)));
    assert_eq!(
        outer_pages(page - 1, 2, 10 * page),
        Some((0, 2 * page as usize))
    );
    assert_eq!(
        outer_pages(3 * page, page, 10 * page),
        Some((3 * page as usize, page as usize))
    );
    // Clamped to the mapping.
    assert_eq!(
        outer_pages(9 * page + 5, 2 * page, 9 * page + 100),
        Some((9 * page as usize, 100))
    );
    assert_eq!(outer_pages(0, 0, 10 * page), None);
}

#[test]
fn a_pool_of_two_files_serves_a_torrent_of_five_and_closes_its_files_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, stream) = sample();
    let pool = crate::storage::pool::FilePool::new(2);
    let roles = crate::select::Role::every_file(&meta.info.files);
    let s = MmapStorage::open_selected(dir.path(), &meta.info, &roles, pool.clone())
        .unwrap()
        .storage;
    assert_eq!(pool.open_files(), 0, "nothing is held open after creation");
    write_all(&s, &stream);
    assert!(pool.open_files() <= 2, "{} open", pool.open_files());
    s.flush().unwrap();
    let all = (0..meta.info.lengths.piece_count()).fold(
        crate::bitfield::Bitfield::new(meta.info.lengths.piece_count()),
        |mut b, p| {
            b.set(p);
            b
        },
    );
    let good = recheck(&s, &PieceCheck::v1(meta.info.piece_hashes.clone()), &all, 2);
    assert_eq!(
        good.count(),
        meta.info.lengths.piece_count(),
        "every piece reads back"
    );
    assert!(pool.open_files() <= 2);
    drop(s);
    assert_eq!(
        pool.open_files(),
        0,
        "a dropped storage leaves nothing open"
    );
}
