//! Tests of torrent creation: piece size choice, file order, skipped entries, hashes that verify.

use super::*;
use crate::metainfo::Metainfo;
use crate::storage::hash_matches;

#[test]
fn auto_piece_length_targets_at_most_2000_pieces() {
    assert_eq!(auto_piece_length(1), MIN_PIECE);
    assert_eq!(auto_piece_length(2000 * 16384), MIN_PIECE);
    assert_eq!(auto_piece_length(2000 * 16384 + 1), 32768);
    let gib = 1u64 << 30;
    let p = auto_piece_length(gib);
    assert_eq!(p, 1 << 20);
    assert!((1000..=2000).contains(&gib.div_ceil(u64::from(p))));
    assert_eq!(auto_piece_length(u64::MAX / 2), MAX_PIECE);
}

#[test]
fn a_directory_in_byte_order_without_hidden_files_or_links() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("item");
    std::fs::create_dir_all(root.join("b/sub")).unwrap();
    std::fs::write(root.join("b/sub/z.bin"), vec![7u8; 70_000]).unwrap();
    std::fs::write(root.join("a.txt"), b"hello").unwrap();
    std::fs::write(root.join("B.txt"), b"").unwrap();
    std::fs::write(root.join(".hidden"), b"secret").unwrap();
    std::os::unix::fs::symlink(root.join("a.txt"), root.join("link")).unwrap();
    let opts = CreateOptions {
        trackers: vec!["http://t1/announce".into(), "udp://t2:1/announce".into()],
        web_seeds: vec!["http://ws/".into()],
        private: true,
        comment: Some("made in a test".into()),
        ..CreateOptions::default()
    };
    let made = create(&root, &opts, &|_| {}).unwrap();
    assert_eq!((made.files, made.skipped), (3, 2));
    let meta = Metainfo::from_bytes(&made.bytes).unwrap();
    let paths: Vec<String> = meta.info.files.iter().map(|f| f.display_path()).collect();
    assert_eq!(paths, vec!["B.txt", "a.txt", "b/sub/z.bin"]);
    assert!(meta.info.private && meta.info.multi_file);
    assert_eq!(
        meta.tiers(),
        vec![
            vec!["http://t1/announce".to_string()],
            vec!["udp://t2:1/announce".to_string()]
        ]
    );
    assert_eq!(meta.url_list, vec!["http://ws/".to_string()]);
    assert_eq!(meta.comment.as_deref(), Some("made in a test"));
    // Every piece hash matches the concatenated bytes.
    let mut stream = b"hello".to_vec();
    stream.extend(vec![7u8; 70_000]);
    for (i, chunk) in stream.chunks(made.piece_length as usize).enumerate() {
        assert!(hash_matches(chunk, &meta.info.piece_hashes[i]), "piece {i}");
    }
    // Deterministic: the same input makes the same info-hash.
    let again = Metainfo::from_bytes(&create(&root, &opts, &|_| {}).unwrap().bytes).unwrap();
    assert_eq!(again.info_hash, meta.info_hash);
}

#[test]
fn a_single_file_and_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("one.iso");
    std::fs::write(&f, vec![1u8; 40_000]).unwrap();
    let made = create(&f, &CreateOptions::default(), &|_| {}).unwrap();
    let meta = Metainfo::from_bytes(&made.bytes).unwrap();
    assert!(!meta.info.multi_file);
    assert_eq!(meta.info.name, "one.iso");
    assert_eq!(meta.info.lengths.total(), 40_000);
    let bad = CreateOptions {
        piece_length: Some(10_000),
        ..CreateOptions::default()
    };
    assert!(matches!(
        create(&f, &bad, &|_| {}),
        Err(CreateError::BadPieceSize(10_000))
    ));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        create(&empty, &CreateOptions::default(), &|_| {}),
        Err(CreateError::Empty(_))
    ));
    assert!(matches!(
        create(&dir.path().join("nope"), &CreateOptions::default(), &|_| {}),
        Err(CreateError::Io { .. })
    ));
}
