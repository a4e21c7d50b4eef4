//! Unit tests of the metadata assembler: scheduling across sources, what is accepted, timeouts,
//! rejects, hash failures and the audit, size edges, and a real info dictionary end to end.

use std::path::PathBuf;

use super::super::{piece_of, torrent_from_info, MetadataMessage, MAX_METADATA_SIZE};
use sha1::{Digest, Sha1};

use super::*;
use crate::metainfo::testkit;
use crate::metainfo::Metainfo;
use crate::types::{InfoHash, InfoHashV2};

const K16: usize = METADATA_PIECE_LEN;
const A: u8 = 1;
const B: u8 = 2;
const C: u8 = 3;

fn hash(bytes: &[u8]) -> InfoHash {
    InfoHash(Sha1::digest(bytes).into())
}

/// An assembler for `info`, with `sources` registered under its true size.
fn setup(info: &[u8], sources: &[u8]) -> MetadataAssembler<u8> {
    let mut a = MetadataAssembler::new(hash(info), info.len() as i64).unwrap();
    for &s in sources {
        assert!(a.add_source(s, info.len() as i64));
    }
    a
}

/// Delivers piece `p` of `info` from `s`.
fn give(a: &mut MetadataAssembler<u8>, s: u8, info: &[u8], p: u32) -> Result<Progress<u8>, Blame> {
    a.on_data(s, p, info.len() as u32, piece_of(info, p).unwrap())
}

/// Asks `s` for everything it will take now.
fn drain(a: &mut MetadataAssembler<u8>, s: u8, now: Instant) -> Vec<u32> {
    std::iter::from_fn(|| a.next_request(s, now))
        .take(1000)
        .collect()
}

fn complete(p: Result<Progress<u8>, Blame>) -> (Vec<u8>, Vec<u8>) {
    match p {
        Ok(Progress::Complete { info, culprits }) => (info, culprits),
        other => panic!("not complete: {other:?}"),
    }
}

#[test]
fn refuses_implausible_sizes_before_any_request() {
    let h = InfoHash([0; 20]);
    for bad in [0, -1, 10 * 1024 * 1024 + 1, MAX_METADATA_SIZE as i64 + 1] {
        assert_eq!(
            MetadataAssembler::<u8>::new(h, bad).unwrap_err(),
            MetadataError::BadSize(bad)
        );
    }
    let a = MetadataAssembler::<u8>::new(h, MAX_METADATA_SIZE as i64).unwrap();
    assert_eq!(a.pieces(), 640);
    assert_eq!(
        a.buf.capacity(),
        0,
        "nothing allocated before a piece arrives"
    );
}

#[test]
fn one_source_in_order() {
    let info = testkit::bytes(2 * K16 + 100, 7);
    let mut a = setup(&info, &[A]);
    let t = Instant::now();
    assert_eq!(drain(&mut a, A, t), vec![0, 1, 2]);
    assert_eq!(
        give(&mut a, A, &info, 0),
        Ok(Progress::Stored { have: 1, pieces: 3 })
    );
    assert_eq!(a.buf.len(), info.len(), "the buffer is the claimed size");
    assert_eq!(
        give(&mut a, A, &info, 1),
        Ok(Progress::Stored { have: 2, pieces: 3 })
    );
    let (got, culprits) = complete(give(&mut a, A, &info, 2));
    assert_eq!(got, info);
    assert!(culprits.is_empty());
    assert!(a.is_complete());
    assert_eq!(a.next_request(A, t), None);
    assert_eq!(give(&mut a, A, &info, 0), Ok(Progress::Redundant));
}

#[test]
fn three_sources_in_parallel_out_of_order() {
    let info = testkit::bytes(10 * K16 + 5, 3);
    let mut a = setup(&info, &[A, B, C]);
    let t = Instant::now();
    let asked: Vec<Vec<u32>> = [A, B, C].iter().map(|&s| drain(&mut a, s, t)).collect();
    assert_eq!(
        asked,
        vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9, 10]]
    );
    // Answers arrive in reverse; windows refill as they do.
    for p in (0..=10).rev() {
        let s = [A, B, C][p as usize / 4];
        if p > 0 {
            assert!(matches!(
                give(&mut a, s, &info, p),
                Ok(Progress::Stored { .. })
            ));
        }
    }
    assert_eq!(drain(&mut a, B, t), Vec::<u32>::new(), "piece 0 is A's");
    let (got, _) = complete(give(&mut a, A, &info, 0));
    assert_eq!(got, info);
}

#[test]
fn window_is_bounded_per_source() {
    let info = testkit::bytes(20 * K16, 1);
    let mut a = setup(&info, &[A]);
    let t = Instant::now();
    assert_eq!(drain(&mut a, A, t).len(), MAX_OUTSTANDING_PER_SOURCE);
    give(&mut a, A, &info, 2).unwrap();
    assert_eq!(drain(&mut a, A, t), vec![4]);
}

#[test]
fn wrong_data_blames_the_source() {
    let info = testkit::bytes(2 * K16 + 1, 5);
    let mut a = setup(&info, &[A]);
    let size = info.len() as u32;
    drain(&mut a, A, Instant::now());
    assert_eq!(
        a.on_data(A, 0, size + 1, &info[..K16]),
        Err(Blame::WrongTotalSize {
            claimed: size + 1,
            expected: size
        })
    );
    assert_eq!(
        a.on_data(A, 3, size, &info[..1]),
        Err(Blame::PieceOutOfRange {
            piece: 3,
            pieces: 3
        })
    );
    assert_eq!(
        a.on_data(A, 0, size, &info[..K16 - 1]),
        Err(Blame::WrongLength {
            piece: 0,
            len: K16 - 1,
            expected: K16
        })
    );
    // The last piece is one byte, not more.
    assert_eq!(
        a.on_data(A, 2, size, &info[..2]),
        Err(Blame::WrongLength {
            piece: 2,
            len: 2,
            expected: 1
        })
    );
    assert_eq!(
        a.on_data(C, 1, size, &info[K16..2 * K16]),
        Err(Blame::Unrequested { piece: 1 }),
        "an unknown source"
    );
    assert!(give(&mut a, A, &info, 1).is_ok());
    assert_eq!(
        give(&mut a, A, &info, 1),
        Err(Blame::Unrequested { piece: 1 }),
        "a duplicate"
    );
    assert!(Blame::WrongLength {
        piece: 0,
        len: 1,
        expected: 2
    }
    .to_string()
    .contains("expected 2"));
}

#[test]
fn a_claim_of_another_size_is_not_a_source() {
    let info = testkit::bytes(K16, 5);
    let mut a = setup(&info, &[A]);
    assert!(!a.add_source(B, K16 as i64 + 1));
    assert!(!a.add_source(B, 0));
    assert_eq!(a.next_request(B, Instant::now()), None);
    assert_eq!(a.usable_sources(), 1);
}

#[test]
fn reject_backs_off_and_hands_pieces_to_others() {
    let info = testkit::bytes(3 * K16, 9);
    let mut a = setup(&info, &[A, B]);
    let t = Instant::now();
    assert_eq!(drain(&mut a, A, t), vec![0, 1, 2]);
    a.on_reject(A, 0, t);
    assert_eq!(a.next_request(A, t), None, "backing off");
    // A's pieces, rejected or not, go to B at once.
    assert_eq!(drain(&mut a, B, t), vec![0, 1, 2]);
    // A late answer from A for a piece it did not reject is still welcome.
    assert!(matches!(
        give(&mut a, A, &info, 1),
        Ok(Progress::Stored { have: 1, .. })
    ));
    assert_eq!(give(&mut a, B, &info, 1), Ok(Progress::Redundant));
    assert_eq!(
        give(&mut a, A, &info, 0),
        Err(Blame::Unrequested { piece: 0 })
    );
    a.source_gone(B);
    assert_eq!(
        a.next_request(A, t + REJECT_BACKOFF - Duration::from_millis(1)),
        None
    );
    // Piece 2 is still owed by A (not rejected): only piece 0 is asked again.
    assert_eq!(drain(&mut a, A, t + REJECT_BACKOFF), vec![0]);
    give(&mut a, A, &info, 2).unwrap();
    assert_eq!(complete(give(&mut a, A, &info, 0)).0, info);
}

#[test]
fn timed_out_pieces_go_to_another_source() {
    let info = testkit::bytes(2 * K16, 11);
    let mut a = setup(&info, &[A, B]);
    let t = Instant::now();
    assert_eq!(drain(&mut a, A, t), vec![0, 1]);
    assert_eq!(a.next_request(B, t + REQUEST_TIMEOUT / 2), None);
    assert!(!a.is_stalled(A, t + REQUEST_TIMEOUT / 2));
    let late = t + REQUEST_TIMEOUT;
    assert!(a.is_stalled(A, late));
    assert_eq!(drain(&mut a, B, late), vec![0, 1]);
    // A stalled source gets nothing new; it is not asked again for what it holds.
    assert_eq!(a.next_request(A, late + REQUEST_TIMEOUT), None);
    // Both answers count: whoever is first stores, the other is redundant.
    assert!(matches!(
        give(&mut a, A, &info, 0),
        Ok(Progress::Stored { .. })
    ));
    assert_eq!(give(&mut a, B, &info, 0), Ok(Progress::Redundant));
    let (got, _) = complete(give(&mut a, B, &info, 1));
    assert_eq!(got, info);
}

#[test]
fn a_gone_source_returns_its_pieces() {
    let info = testkit::bytes(2 * K16, 13);
    let mut a = setup(&info, &[A, B]);
    let t = Instant::now();
    assert_eq!(drain(&mut a, A, t), vec![0, 1]);
    a.source_gone(A);
    assert_eq!(drain(&mut a, B, t), vec![0, 1]);
    assert_eq!(a.usable_sources(), 1);
    assert_eq!(a.next_request(A, t), None);
}

#[test]
fn a_lone_liar_is_blamed_and_the_fetch_restarts() {
    let info = testkit::bytes(2 * K16, 17);
    let mut bad = info.clone();
    bad[K16 + 3] ^= 1;
    let mut a = setup(&info, &[A, B]);
    let t = Instant::now();
    drain(&mut a, A, t);
    give(&mut a, A, &bad, 0).unwrap();
    assert_eq!(
        give(&mut a, A, &bad, 1),
        Ok(Progress::HashMismatch {
            culprits: vec![A],
            suspects: vec![]
        })
    );
    assert_eq!(a.have(), 0);
    assert!(!a.is_auditing());
    assert_eq!(a.next_request(A, t), None, "refused for good");
    assert_eq!(a.usable_sources(), 1);
    assert_eq!(drain(&mut a, B, t), vec![0, 1]);
    give(&mut a, B, &info, 0).unwrap();
    assert_eq!(complete(give(&mut a, B, &info, 1)).0, info);
}

/// A, B and C share a buffer in which B's piece is wrong: the audit names B.
fn shared_failure(info: &[u8], bad: &[u8]) -> MetadataAssembler<u8> {
    let mut a = setup(info, &[A, B, C]);
    let t = Instant::now();
    for (s, p) in [(A, 0), (B, 1), (C, 2)] {
        assert_eq!(a.next_request(s, t), Some(p));
    }
    give(&mut a, A, info, 0).unwrap();
    give(&mut a, B, bad, 1).unwrap();
    assert_eq!(
        give(&mut a, C, info, 2),
        Ok(Progress::HashMismatch {
            culprits: vec![],
            suspects: vec![A, B, C]
        })
    );
    assert!(a.is_auditing());
    a
}

#[test]
fn a_shared_hash_failure_is_audited_from_one_source() {
    let info = testkit::bytes(3 * K16 - 10, 19);
    let mut bad = info.clone();
    bad[K16] ^= 0x80;
    let mut a = shared_failure(&info, &bad);
    let t = Instant::now();
    // C takes the round; nobody else is asked meanwhile.
    assert_eq!(drain(&mut a, C, t), vec![0, 1, 2]);
    assert_eq!(a.next_request(A, t), None);
    for p in 0..2 {
        give(&mut a, C, &info, p).unwrap();
    }
    let (got, culprits) = complete(give(&mut a, C, &info, 2));
    assert_eq!(got, info);
    assert_eq!(culprits, vec![B]);
}

#[test]
fn an_audit_owner_that_lies_again_is_caught_and_replaced() {
    let info = testkit::bytes(3 * K16, 23);
    let mut bad = info.clone();
    bad[K16 + 1] ^= 4;
    let mut a = shared_failure(&info, &bad);
    let t = Instant::now();
    assert_eq!(drain(&mut a, B, t), vec![0, 1, 2]);
    for p in 0..2 {
        give(&mut a, B, &bad, p).unwrap();
    }
    assert_eq!(
        give(&mut a, B, &bad, 2),
        Ok(Progress::HashMismatch {
            culprits: vec![B],
            suspects: vec![]
        })
    );
    assert!(a.is_auditing());
    assert_eq!(a.next_request(B, t), None);
    assert_eq!(drain(&mut a, A, t), vec![0, 1, 2]);
    for p in 0..2 {
        give(&mut a, A, &info, p).unwrap();
    }
    let (got, culprits) = complete(give(&mut a, A, &info, 2));
    assert_eq!(got, info);
    assert_eq!(
        culprits,
        vec![B],
        "the first round's liar, from the comparison"
    );
}

#[test]
fn a_stalled_audit_owner_loses_the_round() {
    let info = testkit::bytes(3 * K16, 29);
    let mut bad = info.clone();
    bad[K16] ^= 1;
    let mut a = shared_failure(&info, &bad);
    let t = Instant::now();
    assert_eq!(drain(&mut a, A, t), vec![0, 1, 2]);
    give(&mut a, A, &info, 0).unwrap();
    assert_eq!(a.next_request(C, t + REQUEST_TIMEOUT / 2), None);
    let later = t + REQUEST_TIMEOUT;
    assert_eq!(drain(&mut a, C, later), vec![0, 1, 2]);
    assert_eq!(a.have(), 0, "the round starts over with the new owner");
    // A's late answer is not mixed into C's round.
    assert_eq!(give(&mut a, A, &info, 1), Ok(Progress::Redundant));
    for p in 0..2 {
        give(&mut a, C, &info, p).unwrap();
    }
    assert_eq!(complete(give(&mut a, C, &info, 2)).1, vec![B]);
}

#[test]
fn an_audit_owner_that_leaves_frees_the_round() {
    let info = testkit::bytes(2 * K16 + 1, 31);
    let mut bad = info.clone();
    bad[K16] ^= 1;
    let mut a = shared_failure(&info, &bad);
    let t = Instant::now();
    assert_eq!(drain(&mut a, A, t), vec![0, 1, 2]);
    a.on_reject(A, 0, t);
    assert_eq!(drain(&mut a, C, t), vec![0, 1, 2]);
    a.source_gone(C);
    assert_eq!(drain(&mut a, B, t), vec![0, 1, 2]);
}

#[test]
fn piece_size_edges() {
    for (len, pieces, last) in [
        (1, 1, 1),
        (K16 - 1, 1, K16 - 1),
        (K16, 1, K16),
        (K16 + 1, 2, 1),
    ] {
        let info = testkit::bytes(len, len as u32);
        let mut a = setup(&info, &[A]);
        assert_eq!(a.pieces(), pieces);
        drain(&mut a, A, Instant::now());
        let lastp = pieces - 1;
        assert_eq!(piece_of(&info, lastp).unwrap().len(), last);
        let short = &info[lastp as usize * K16..info.len() - 1];
        assert_eq!(
            a.on_data(A, lastp, len as u32, short),
            Err(Blame::WrongLength {
                piece: lastp,
                len: last - 1,
                expected: last
            })
        );
    }
    // 16 KiB + 1 completes with a one-byte last piece.
    let info = testkit::bytes(K16 + 1, 37);
    let mut a = setup(&info, &[A]);
    drain(&mut a, A, Instant::now());
    give(&mut a, A, &info, 1).unwrap();
    assert_eq!(complete(give(&mut a, A, &info, 0)).0, info);
}

#[test]
fn the_largest_metadata_completes() {
    let info = testkit::bytes(MAX_METADATA_SIZE, 41);
    let mut a = setup(&info, &[A, B, C]);
    assert_eq!(a.pieces(), 640);
    let t = Instant::now();
    let mut last = None;
    for _round in 0..1000 {
        for s in [A, B, C] {
            for p in drain(&mut a, s, t) {
                last = Some(give(&mut a, s, &info, p).unwrap());
            }
        }
        if a.is_complete() {
            break;
        }
    }
    assert_eq!(piece_of(&info, 639).unwrap().len(), K16 - 8);
    assert_eq!(
        complete(last.ok_or(Blame::Unrequested { piece: 0 })).0,
        info
    );
}

/// The `.torrent` files in `../shared/example-torrents/`, if present.
fn example_torrents() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/example-torrents");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "SKIPPED: {} is absent (CI always has ../shared)",
            dir.display()
        );
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    paths.retain(|p| p.extension().is_some_and(|e| e == "torrent"));
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn real_info_dictionaries_end_to_end() {
    let files = [
        ("d/one", testkit::bytes(300_000, 1)),
        ("d/two", testkit::bytes(5, 2)),
    ];
    let (built, _) = testkit::multi_file("e2e", &files, 16 * 1024);
    let mut torrents = vec![built];
    for bytes in example_torrents() {
        torrents.push(Metainfo::from_bytes(&bytes).unwrap());
    }
    let t = Instant::now();
    for meta in &torrents {
        let info = &meta.info_bytes;
        let mut a = MetadataAssembler::new(meta.info_hash, info.len() as i64).unwrap();
        let sources = [A, B];
        sources
            .iter()
            .for_each(|&s| assert!(a.add_source(s, info.len() as i64)));
        let mut result = None;
        for _round in 0..1000 {
            let asked: Vec<(u8, u32)> = (sources.iter())
                .flat_map(|&s| drain(&mut a, s, t).into_iter().map(move |p| (s, p)))
                .collect();
            for (s, p) in asked.into_iter().rev() {
                let data = MetadataMessage::answer(info, p).encode();
                let Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data,
                }) = MetadataMessage::parse(&data)
                else {
                    panic!("piece {p} of {}", info.len());
                };
                if let Progress::Complete { info, .. } =
                    a.on_data(s, piece, total_size, data).unwrap()
                {
                    result = Some(info);
                }
            }
            if result.is_some() {
                break;
            }
        }
        let got = result.expect("the assembler completes");
        let again = Metainfo::from_bytes(&torrent_from_info(&got)).unwrap();
        assert_eq!(again.info_hash, meta.info_hash, "{}", meta.info.name);
        assert_eq!(again.info.lengths, meta.info.lengths);
    }
    assert!(
        torrents.len() == 1 || torrents.len() >= 7,
        "{} torrents",
        torrents.len()
    );
}

/// Assembles `info` from one source with an assembler that expects `ids`.
fn assemble_with(ids: InfoHashes, info: &[u8]) -> Result<Progress<u8>, Blame> {
    let mut a = MetadataAssembler::new(ids, info.len() as i64).unwrap();
    assert!(a.add_source(A, info.len() as i64));
    let asked = drain(&mut a, A, Instant::now());
    let mut last = None;
    for p in asked {
        last = Some(give(&mut a, A, info, p));
    }
    last.unwrap()
}

#[test]
fn a_v2_link_checks_the_sha256_and_a_hybrid_link_both() {
    let info = testkit::bytes(K16 + 300, 9);
    let v1 = hash(&info);
    let v2 = InfoHashV2(sha2::Sha256::digest(&info).into());
    let wrong = InfoHashV2([7; 32]);
    let ok = [
        InfoHashes {
            v1: None,
            v2: Some(v2),
        },
        InfoHashes {
            v1: Some(v1),
            v2: Some(v2),
        },
    ];
    for ids in ok {
        let (got, culprits) = complete(assemble_with(ids, &info));
        assert_eq!(got, info, "{ids:?}");
        assert!(culprits.is_empty());
    }
    let bad = [
        InfoHashes {
            v1: None,
            v2: Some(wrong),
        },
        InfoHashes {
            v1: Some(v1),
            v2: Some(wrong),
        },
        InfoHashes {
            v1: Some(InfoHash([1; 20])),
            v2: Some(v2),
        },
    ];
    for ids in bad {
        assert!(
            matches!(assemble_with(ids, &info), Ok(Progress::HashMismatch { .. })),
            "{ids:?}"
        );
    }
}
