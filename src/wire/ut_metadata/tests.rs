//! Unit tests of the `ut_metadata` codec and the serving-side helpers.

use super::*;
use crate::metainfo::Metainfo;

const K16: usize = METADATA_PIECE_LEN;

fn data_payload(header: &[u8], data_len: usize) -> Vec<u8> {
    let mut p = header.to_vec();
    p.extend((0..data_len).map(|i| (i % 251) as u8));
    p
}

#[test]
fn round_trips() {
    let data: Vec<u8> = (0..K16).map(|i| (i * 7) as u8).collect();
    let messages = [
        MetadataMessage::Request { piece: 0 },
        MetadataMessage::Request {
            piece: MAX_METADATA_PIECES - 1,
        },
        MetadataMessage::Reject { piece: 3 },
        MetadataMessage::Data {
            piece: 0,
            total_size: 34256,
            data: &data,
        },
        MetadataMessage::Data {
            piece: 2,
            total_size: 34256,
            data: &data[..34256 - 2 * K16],
        },
        MetadataMessage::Data {
            piece: 0,
            total_size: 1,
            data: b"d",
        },
    ];
    for m in messages {
        assert_eq!(MetadataMessage::parse(&m.encode()), Ok(m), "{m:?}");
    }
}

#[test]
fn known_wire_bytes() {
    assert_eq!(
        MetadataMessage::Request { piece: 0 }.encode(),
        b"d8:msg_typei0e5:piecei0ee"
    );
    assert_eq!(
        MetadataMessage::Reject { piece: 7 }.encode(),
        b"d8:msg_typei2e5:piecei7ee"
    );
    let data = MetadataMessage::Data {
        piece: 2,
        total_size: 34256,
        data: b"xyz",
    };
    assert_eq!(
        data.encode(),
        b"d8:msg_typei1e5:piecei2e10:total_sizei34256eexyz"
    );
}

#[test]
fn libtorrent_shaped_messages() {
    // BEP 9's example, a first piece of 16 KiB.
    let payload = data_payload(b"d8:msg_typei1e5:piecei0e10:total_sizei34256ee", K16);
    let Ok(MetadataMessage::Data {
        piece: 0,
        total_size: 34256,
        data,
    }) = MetadataMessage::parse(&payload)
    else {
        panic!("{:?}", MetadataMessage::parse(&payload));
    };
    assert_eq!(data, &payload[payload.len() - K16..]);
    // libtorrent puts `total_size` in a reject when it has the metadata.
    assert_eq!(
        MetadataMessage::parse(b"d8:msg_typei2e5:piecei1e10:total_sizei34256ee"),
        Ok(MetadataMessage::Reject { piece: 1 })
    );
    // Unsorted keys and unknown keys are accepted.
    assert_eq!(
        MetadataMessage::parse(b"d5:piecei4e8:msg_typei0e3:zzz3:abce"),
        Ok(MetadataMessage::Request { piece: 4 })
    );
}

#[test]
fn data_that_looks_like_bencode_is_split_at_the_dictionary() {
    // The metadata itself is a bencoded dictionary: the header ends where the first value ends.
    let payload = b"d8:msg_typei1e5:piecei0e10:total_sizei8eed4:xy1ee";
    assert_eq!(
        MetadataMessage::parse(payload),
        Ok(MetadataMessage::Data {
            piece: 0,
            total_size: 8,
            data: b"d4:xy1ee",
        })
    );
    // Metadata whose first byte continues no value: the header still ends at its `e`.
    let payload = b"d8:msg_typei1e5:piecei0e10:total_sizei2ee99";
    assert!(matches!(
        MetadataMessage::parse(payload),
        Ok(MetadataMessage::Data { data: b"99", .. })
    ));
}

#[test]
fn unknown_types_have_their_own_error() {
    for (payload, kind) in [
        (&b"d8:msg_typei3e5:piecei0ee"[..], 3),
        (b"d8:msg_typei-1e5:piecei0ee", -1),
        // A future type need not have a `piece`.
        (b"d8:msg_typei77ee", 77),
        (b"d8:msg_typei9ee12345", 9),
    ] {
        assert_eq!(
            MetadataMessage::parse(payload),
            Err(MetadataError::UnknownType(kind))
        );
    }
}

#[test]
fn junk_is_refused_with_a_reason() {
    use MetadataError as E;
    let cases: Vec<(Vec<u8>, MetadataError)> = vec![
        (b"li1ee".to_vec(), E::NotADict("list")),
        (b"i1e".to_vec(), E::NotADict("integer")),
        (b"5:piece".to_vec(), E::NotADict("byte string")),
        (b"de".to_vec(), E::Missing("msg_type")),
        (b"d5:piecei0ee".to_vec(), E::Missing("msg_type")),
        (b"d8:msg_type1:0e".to_vec(), E::Missing("msg_type")),
        (b"d8:msg_typei0ee".to_vec(), E::Missing("piece")),
        (b"d8:msg_typei0e5:piece1:0e".to_vec(), E::Missing("piece")),
        (
            b"d8:msg_typei1e5:piecei0ee".to_vec(),
            E::Missing("total_size"),
        ),
        (
            b"d8:msg_typei0e5:piecei-1ee".to_vec(),
            E::PieceOutOfRange {
                piece: -1,
                pieces: MAX_METADATA_PIECES,
            },
        ),
        (
            format!("d8:msg_typei2e5:piecei{MAX_METADATA_PIECES}ee").into_bytes(),
            E::PieceOutOfRange {
                piece: i64::from(MAX_METADATA_PIECES),
                pieces: MAX_METADATA_PIECES,
            },
        ),
        (
            b"d8:msg_typei1e5:piecei3e10:total_sizei34256ee".to_vec(),
            E::PieceOutOfRange {
                piece: 3,
                pieces: 3,
            },
        ),
        (
            b"d8:msg_typei1e5:piecei0e10:total_sizei0ee".to_vec(),
            E::BadSize(0),
        ),
        (
            b"d8:msg_typei1e5:piecei0e10:total_sizei-5ee".to_vec(),
            E::BadSize(-5),
        ),
        (
            format!(
                "d8:msg_typei1e5:piecei0e10:total_sizei{}ee",
                MAX_METADATA_SIZE + 1
            )
            .into_bytes(),
            E::BadSize(MAX_METADATA_SIZE as i64 + 1),
        ),
        (
            data_payload(b"d8:msg_typei1e5:piecei0e10:total_sizei34256ee", K16 + 1),
            E::DataTooLong(K16 + 1),
        ),
        (
            b"d8:msg_typei0e5:piecei0eexx".to_vec(),
            E::Trailing {
                kind: "request",
                len: 2,
            },
        ),
        (
            b"d8:msg_typei2e5:piecei0ee\0".to_vec(),
            E::Trailing {
                kind: "reject",
                len: 1,
            },
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(
            MetadataMessage::parse(&payload),
            Err(want),
            "{:?}",
            String::from_utf8_lossy(&payload)
        );
    }
}

#[test]
fn bencode_faults_and_overlong_headers_are_refused() {
    for payload in [
        &b""[..],
        b"garbage",
        b"d8:msg_typei0e5:piecei0e",
        b"d8:msg_typei0e5:piecei00ee",
        b"d8:msg_typei0e8:msg_typei0ee",
    ] {
        let err = MetadataMessage::parse(payload).unwrap_err();
        assert!(matches!(err, MetadataError::Bencode(_)), "{err:?}");
    }
    // A dictionary padded past MAX_HEADER_LEN is refused, even with valid keys.
    let pad = "x".repeat(MAX_HEADER_LEN);
    let payload = format!("d8:msg_typei0e3:pad{}:{pad}5:piecei0ee", pad.len());
    let err = MetadataMessage::parse(payload.as_bytes()).unwrap_err();
    assert!(matches!(err, MetadataError::Bencode(_)), "{err:?}");
    // One that just fits is accepted.
    let fill = MAX_HEADER_LEN - b"d8:msg_typei0e3:pad000:5:piecei0ee".len();
    let payload = format!("d8:msg_typei0e3:pad{fill}:{}5:piecei0ee", "x".repeat(fill));
    assert_eq!(payload.len(), MAX_HEADER_LEN);
    assert_eq!(
        MetadataMessage::parse(payload.as_bytes()),
        Ok(MetadataMessage::Request { piece: 0 })
    );
}

#[test]
fn error_messages_are_one_line_and_say_what_to_fix() {
    let err = MetadataMessage::parse(b"d8:msg_typei1e5:piecei0e10:total_sizei99999999ee");
    let text = err.unwrap_err().to_string();
    assert_eq!(
        text,
        format!("metadata size 99999999 is not within 1..={MAX_METADATA_SIZE} bytes")
    );
    let text = MetadataMessage::parse(b"xx").unwrap_err().to_string();
    assert!(
        text.starts_with("ut_metadata message is not bencoded"),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

#[test]
fn size_bounds() {
    assert_eq!(
        MAX_METADATA_SIZE + b"d4:infoe".len(),
        Limits::TORRENT.max_len
    );
    assert_eq!(MAX_METADATA_PIECES, 640);
    assert_eq!(metadata_size(1), Ok(1));
    assert_eq!(
        metadata_size(MAX_METADATA_SIZE as i64),
        Ok(MAX_METADATA_SIZE as u32)
    );
    for bad in [
        0,
        -1,
        i64::MIN,
        MAX_METADATA_SIZE as i64 + 1,
        10 * 1024 * 1024 + 1,
        i64::MAX,
    ] {
        assert_eq!(metadata_size(bad), Err(MetadataError::BadSize(bad)));
    }
}

#[test]
fn pieces_of_our_metadata() {
    assert_eq!(piece_count(0), 0);
    assert_eq!(piece_count(1), 1);
    assert_eq!(piece_count(K16), 1);
    assert_eq!(piece_count(K16 + 1), 2);
    assert_eq!(piece_count(MAX_METADATA_SIZE), MAX_METADATA_PIECES);
    let info: Vec<u8> = (0..K16 + 1).map(|i| i as u8).collect();
    assert_eq!(piece_of(&info, 0), Some(&info[..K16]));
    assert_eq!(piece_of(&info, 1), Some(&info[K16..]));
    assert_eq!(piece_of(&info, 2), None);
    assert_eq!(piece_of(&info, u32::MAX), None);
    assert_eq!(piece_of(&info[..K16], 1), None);
    assert_eq!(piece_of(&[], 0), None);
}

#[test]
fn answers_to_requests() {
    let info: Vec<u8> = (0..K16 + 10).map(|i| i as u8).collect();
    assert_eq!(
        MetadataMessage::answer(&info, 1),
        MetadataMessage::Data {
            piece: 1,
            total_size: (K16 + 10) as u32,
            data: &info[K16..],
        }
    );
    assert_eq!(
        MetadataMessage::answer(&info, 2),
        MetadataMessage::Reject { piece: 2 }
    );
    // What we send parses back the same way.
    let bytes = MetadataMessage::answer(&info, 0).encode();
    assert_eq!(
        MetadataMessage::parse(&bytes),
        Ok(MetadataMessage::answer(&info, 0))
    );
    // An info dictionary too large to be carried is never offered.
    let huge = vec![0u8; MAX_METADATA_SIZE + 1];
    assert_eq!(
        MetadataMessage::answer(&huge, 0),
        MetadataMessage::Reject { piece: 0 }
    );
}

#[test]
fn wrapped_info_keeps_its_info_hash() {
    let files = [("a/one", crate::metainfo::testkit::bytes(40_000, 1))];
    let (meta, _) = crate::metainfo::testkit::multi_file("wrap", &files, 16 * 1024);
    let wrapped = torrent_from_info(&meta.info_bytes);
    assert!(wrapped.starts_with(b"d4:infod") && wrapped.ends_with(b"ee"));
    let again = Metainfo::from_bytes(&wrapped).unwrap();
    assert_eq!(again.info_hash, meta.info_hash);
    assert_eq!(again.info_bytes, meta.info_bytes);
    assert_eq!(again.announce, None);
    // The largest metadata accepted still fits the `.torrent` size limit once wrapped.
    let big = vec![b'x'; MAX_METADATA_SIZE];
    assert_eq!(torrent_from_info(&big).len(), Limits::TORRENT.max_len);
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..20_000)) {
        let _ = MetadataMessage::parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_near_misses(
        head in proptest::sample::select(vec![
            &b"d8:msg_typei1e5:piecei"[..],
            b"d8:msg_typei0e5:piecei0e",
            b"d8:msg_typei1e5:piecei0e10:total_sizei",
            b"d8:msg_typei2e",
        ]),
        tail in proptest::collection::vec(
            proptest::sample::select(b"0123456789:ilde-x".to_vec()), 0..64),
        data in proptest::collection::vec(proptest::num::u8::ANY, 0..17_000),
    ) {
        let payload = [head, &tail[..], &data[..]].concat();
        if let Ok(MetadataMessage::Data { piece, total_size, data }) = MetadataMessage::parse(&payload) {
            proptest::prop_assert!(data.len() <= METADATA_PIECE_LEN);
            proptest::prop_assert!(piece < piece_count(total_size as usize));
            proptest::prop_assert!(total_size as usize <= MAX_METADATA_SIZE);
        }
    }

    #[test]
    fn data_round_trips(total in 1..=MAX_METADATA_SIZE, pick in proptest::num::u32::ANY) {
        let pieces = piece_count(total);
        let piece = pick % pieces;
        let data = vec![0xa5; piece_len(total as u32, piece)];
        let m = MetadataMessage::Data { piece, total_size: total as u32, data: &data };
        let bytes = m.encode();
        proptest::prop_assert_eq!(MetadataMessage::parse(&bytes), Ok(m));
    }
}
