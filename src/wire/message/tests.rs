//! Unit tests of the message codec: round trips, known bytes, frame limits, bitfield and `have`
//! rules, BEP 6 messages, unknown ids and partial frames.
use super::*;

fn all_messages() -> Vec<Message> {
    let mut bf = Bitfield::new(20);
    bf.set(3);
    bf.set(19);
    vec![
        Message::Bitfield(bf),
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(19),
        Message::Request {
            index: 1,
            begin: 16384,
            length: 16384,
        },
        Message::Piece {
            index: 2,
            begin: 0,
            data: Bytes::from_static(b"hello"),
        },
        Message::Cancel {
            index: 1,
            begin: 16384,
            length: 16384,
        },
        Message::Port(6881),
        Message::Extended {
            id: 0,
            payload: Bytes::from_static(b"de"),
        },
        Message::Suggest(19),
        Message::HaveAll,
        Message::HaveNone,
        Message::Reject {
            index: 1,
            begin: 16384,
            length: 16384,
        },
        Message::AllowedFast(0),
    ]
}

#[test]
fn every_message_round_trips_even_byte_by_byte() {
    let mut wire = BytesMut::new();
    for m in all_messages() {
        m.encode(&mut wire);
    }
    // Whole stream at once.
    let mut codec = Codec::new(20);
    let mut buf = wire.clone();
    let mut got = Vec::new();
    while let Some(m) = codec.decode(&mut buf).unwrap() {
        got.push(m);
    }
    assert_eq!(got, all_messages());
    assert!(buf.is_empty());
    // One byte at a time.
    let mut codec = Codec::new(20);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in wire.iter() {
        buf.put_u8(*b);
        while let Some(m) = codec.decode(&mut buf).unwrap() {
            got.push(m);
        }
    }
    assert_eq!(got, all_messages());
}

#[test]
fn known_wire_bytes() {
    let mut out = BytesMut::new();
    Message::Request {
        index: 1,
        begin: 2,
        length: 3,
    }
    .encode(&mut out);
    assert_eq!(
        &out[..],
        &[0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
    );
    out.clear();
    Message::Interested.encode(&mut out);
    assert_eq!(&out[..], &[0, 0, 0, 1, 2]);
}

fn decode_one(pieces: u32, bytes: &[u8]) -> Result<Option<Message>, WireError> {
    Codec::new(pieces).decode(&mut BytesMut::from(bytes))
}

#[test]
fn oversized_frame_is_refused_before_buffering() {
    let max = Codec::new(10).max_frame();
    // A BEP 9 metadata piece with its header is the longest message but a bitfield.
    assert_eq!(max, 2 + crate::wire::ut_metadata::MAX_PAYLOAD_LEN as u32);
    assert!(max > BLOCK_LEN + 9);
    let mut b = BytesMut::new();
    b.put_u32(max + 1);
    assert_eq!(
        Codec::new(10).decode(&mut b),
        Err(WireError::FrameTooLong { len: max + 1, max })
    );
    b.clear();
    b.put_u32(u32::MAX);
    assert!(Codec::new(10).decode(&mut b).is_err());
    // A torrent with many pieces allows its bitfield and no more.
    assert_eq!(Codec::new(1_000_000).max_frame(), 1 + 125_000);
}

#[test]
fn before_the_metadata_have_and_bitfield_are_read_and_set_aside() {
    let mut c = Codec::without_metadata();
    let mut b = BytesMut::from(&[0, 0, 0, 5, 4, 0, 0, 0, 99, 0, 0, 0, 3, 5, 0xff, 0xff][..]);
    assert_eq!(c.decode(&mut b), Ok(Some(Message::Unknown(4))));
    assert_eq!(c.decode(&mut b), Ok(Some(Message::Unknown(5))));
    assert_eq!(c.decode(&mut b), Ok(None));
    let mut huge = BytesMut::new();
    huge.put_u32(c.max_frame() + 1);
    assert!(matches!(
        c.decode(&mut huge),
        Err(WireError::FrameTooLong { .. })
    ));
}

#[test]
fn bitfield_shape_rules() {
    // 10 pieces need 2 bytes.
    assert!(matches!(
        decode_one(10, &[0, 0, 0, 3, 5, 0xff, 0xc0]),
        Ok(Some(Message::Bitfield(b))) if b.count() == 10
    ));
    assert_eq!(
        decode_one(10, &[0, 0, 0, 3, 5, 0xff, 0xe0]),
        Err(WireError::BadBitfield { len: 2, pieces: 10 })
    );
    assert_eq!(
        decode_one(10, &[0, 0, 0, 2, 5, 0xff]),
        Err(WireError::BadBitfield { len: 1, pieces: 10 })
    );
    assert_eq!(
        decode_one(10, &[0, 0, 0, 4, 5, 0xff, 0xc0, 0]),
        Err(WireError::BadBitfield { len: 3, pieces: 10 })
    );
    // Late and repeated are tolerated (aria2 does both).
    let mut codec = Codec::new(10);
    let mut buf = BytesMut::from(
        &[
            0, 0, 0, 1, 1, 0, 0, 0, 3, 5, 0xff, 0xc0, 0, 0, 0, 3, 5, 0xff, 0xc0,
        ][..],
    );
    assert_eq!(codec.decode(&mut buf), Ok(Some(Message::Unchoke)));
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(Message::Bitfield(_)))
    ));
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(Message::Bitfield(_)))
    ));
    // An extended handshake first does not count.
    let mut codec = Codec::new(10);
    let mut buf = BytesMut::from(&[0, 0, 0, 4, 20, 0, b'd', b'e', 0, 0, 0, 3, 5, 0xff, 0xc0][..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(Message::Extended { id: 0, .. }))
    ));
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(Message::Bitfield(_)))
    ));
}

#[test]
fn have_out_of_range_and_bad_lengths() {
    assert_eq!(
        decode_one(10, &[0, 0, 0, 5, 4, 0, 0, 0, 9]),
        Ok(Some(Message::Have(9)))
    );
    assert_eq!(
        decode_one(10, &[0, 0, 0, 5, 4, 0, 0, 0, 10]),
        Err(WireError::HaveOutOfRange {
            index: 10,
            pieces: 10
        })
    );
    assert_eq!(
        decode_one(10, &[0, 0, 0, 2, 1, 0]),
        Err(WireError::BadLength { id: 1, len: 2 })
    );
    assert_eq!(
        decode_one(10, &[0, 0, 0, 4, 4, 0, 0, 0]),
        Err(WireError::BadLength { id: 4, len: 4 })
    );
    assert_eq!(
        decode_one(10, &[0, 0, 0, 9, 6, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(WireError::BadLength { id: 6, len: 9 })
    );
    assert_eq!(
        decode_one(10, &[0, 0, 0, 5, 7, 0, 0, 0, 0]),
        Err(WireError::BadLength { id: 7, len: 5 })
    );
    assert_eq!(
        decode_one(10, &[0, 0, 0, 2, 9, 0]),
        Err(WireError::BadLength { id: 9, len: 2 })
    );
    assert_eq!(
        decode_one(10, &[0, 0, 0, 1, 20]),
        Err(WireError::BadLength { id: 20, len: 1 })
    );
}

#[test]
fn unknown_ids_are_skipped_and_the_stream_goes_on() {
    let mut codec = Codec::new(10);
    let mut buf = BytesMut::from(&[0, 0, 0, 4, 21, 1, 2, 3, 0, 0, 0, 1, 2][..]);
    assert_eq!(codec.decode(&mut buf), Ok(Some(Message::Unknown(21))));
    assert_eq!(codec.decode(&mut buf), Ok(Some(Message::Interested)));
    assert_eq!(codec.decode(&mut buf), Ok(None));
}

#[test]
fn partial_frames_wait() {
    assert_eq!(decode_one(10, &[0, 0]), Ok(None));
    assert_eq!(decode_one(10, &[0, 0, 0, 5, 4, 0]), Ok(None));
}

#[test]
fn fast_extension_wire_bytes_and_rules() {
    let mut out = BytesMut::new();
    Message::HaveAll.encode(&mut out);
    Message::HaveNone.encode(&mut out);
    Message::Suggest(7).encode(&mut out);
    Message::AllowedFast(9).encode(&mut out);
    Message::Reject {
        index: 1,
        begin: 2,
        length: 3,
    }
    .encode(&mut out);
    assert_eq!(
        &out[..],
        &[
            0, 0, 0, 1, 0x0E, 0, 0, 0, 1, 0x0F, 0, 0, 0, 5, 0x0D, 0, 0, 0, 7, 0, 0, 0, 5, 0x11, 0,
            0, 0, 9, 0, 0, 0, 13, 0x10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3
        ][..]
    );
    // Out of range or before the metadata: skipped, not fatal.
    assert_eq!(
        decode_one(10, &[0, 0, 0, 5, 0x11, 0, 0, 0, 10]),
        Ok(Some(Message::Unknown(0x11)))
    );
    assert_eq!(
        decode_one(10, &[0, 0, 0, 5, 0x0D, 0xff, 0xff, 0xff, 0xff]),
        Ok(Some(Message::Unknown(0x0D)))
    );
    let mut codec = Codec::without_metadata();
    let mut buf = BytesMut::from(&[0, 0, 0, 5, 0x11, 0, 0, 0, 1][..]);
    assert_eq!(codec.decode(&mut buf), Ok(Some(Message::Unknown(0x11))));
    // Wrong lengths are fatal, as for every known id.
    for bad in [
        &[0, 0, 0, 2, 0x0E, 0][..],
        &[0, 0, 0, 2, 0x0F, 0],
        &[0, 0, 0, 4, 0x11, 0, 0, 0],
        &[0, 0, 0, 9, 0x10, 0, 0, 0, 1, 0, 0, 0, 2],
    ] {
        assert!(
            matches!(decode_one(10, bad), Err(WireError::BadLength { .. })),
            "{bad:?}"
        );
    }
}
