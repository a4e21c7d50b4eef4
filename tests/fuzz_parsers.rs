//! Property tests over every parser of outside input: bencode, metainfo (v1, v2 and hybrid), BEP 52 hash
//! messages, HTTP and UDP tracker replies (the client's side), UDP tracker requests and announce/scrape
//! queries (the server's side). Inputs are random bytes and random mutations of valid
//! documents (a real Internet Archive torrent when `../shared` is present, the BEP 52 fixtures of
//! `tests/data/v2`). Properties: no panic, and peak heap during one parse stays under a fixed
//! multiple of the input size (measured by a counting allocator, per thread).
//!
//! `PROPTEST_CASES=N` sets the number of inputs per property (proptest's own variable).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use pixtorrent::bencode::{self, Limits, Value};
use pixtorrent::metainfo::Metainfo;
use pixtorrent::tracker::http::{parse_announce, parse_scrape};
use pixtorrent::tracker::proto::udp::Action;
use pixtorrent::tracker::udp::parse_reply;
use pixtorrent::tracker_server::{query, udp as server_udp};
use pixtorrent::wire::Codec;
use proptest::prelude::*;

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add_signed(delta);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: forwards to the system allocator unchanged; only counts sizes in thread-locals.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak extra heap while `f` runs.
fn peak_heap<T>(f: impl FnOnce() -> T) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    drop(out);
    PEAK.with(Cell::get) - base
}

/// Heap allowed per input byte, plus a constant: the decoded tree costs a few dozen bytes per value,
/// and a value takes at least two input bytes.
const BYTES_PER_INPUT_BYTE: usize = 160;
const FIXED_ALLOWANCE: usize = 256 * 1024;

fn check_bounded(input: &[u8], f: impl FnOnce(&[u8])) {
    let peak = peak_heap(|| f(input));
    let allowed = FIXED_ALLOWANCE + BYTES_PER_INPUT_BYTE * input.len();
    assert!(
        peak <= allowed,
        "{peak} bytes of heap for {} bytes of input",
        input.len()
    );
}

fn sample_torrent() -> Vec<u8> {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/example-torrents/SKODAOCTAVIA336x280_archive.torrent");
    std::fs::read(shared).unwrap_or_else(|_| {
        let info = Value::dict([
            ("name", Value::str("dir")),
            ("piece length", Value::Int(16384)),
            ("pieces", Value::Bytes(vec![1; 40])),
            (
                "files",
                Value::List(vec![
                    Value::dict([
                        ("length", Value::Int(20000)),
                        ("path", Value::List(vec![Value::str("a")])),
                    ]),
                    Value::dict([
                        ("length", Value::Int(0)),
                        ("path", Value::List(vec![Value::str("b"), Value::str("c")])),
                    ]),
                ]),
            ),
        ]);
        Value::dict([
            ("announce", Value::str("http://t/announce")),
            ("info", info),
        ])
        .encode()
    })
}

fn sample_reply() -> Vec<u8> {
    Value::dict([
        ("interval", Value::Int(1800)),
        ("complete", Value::Int(3)),
        (
            "peers",
            Value::Bytes(vec![127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 1, 0, 80]),
        ),
        ("peers6", Value::Bytes(vec![0; 18])),
        (
            "files",
            Value::Dict(
                [(vec![7u8; 20], Value::dict([("complete", Value::Int(1))]))]
                    .into_iter()
                    .collect(),
            ),
        ),
    ])
    .encode()
}

/// Applies byte edits: overwrite, insert, delete, truncate.
fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(op, at, byte) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let at = at % bytes.len();
        match op % 4 {
            0 => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            2 => {
                bytes.remove(at);
            }
            _ => bytes.truncate(at),
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    // Bias the new bytes toward bencode's own alphabet so mutations reach deep into the parsers.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"0123456789:ilde-".to_vec())
    ];
    prop::collection::vec((any::<u8>(), any::<usize>(), byte), 1..8)
}

/// Any bencode value up to a modest size.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            prop::collection::btree_map(prop::collection::vec(any::<u8>(), 0..8), inner, 0..8)
                .prop_map(Value::Dict),
        ]
    })
}

proptest! {
    #[test]
    fn bencode_round_trips(v in value()) {
        let bytes = v.encode();
        let doc = bencode::decode(&bytes, Limits::TORRENT).unwrap();
        prop_assert_eq!(doc.root().to_value(), v);
        prop_assert_eq!(doc.root().raw(), &bytes[..]);
    }

    #[test]
    fn bencode_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_bounded(&bytes, |b| {
            if let Ok(doc) = bencode::decode(b, Limits::TORRENT) {
                // Whatever decodes re-decodes from its canonical encoding.
                let again = doc.root().to_value().encode();
                assert!(bencode::decode(&again, Limits::TORRENT).is_ok());
            }
        });
    }

    #[test]
    fn bencode_mutated_values(v in value(), e in edits()) {
        check_bounded(&mutate(v.encode(), &e), |b| { let _ = bencode::decode(b, Limits::TORRENT); });
    }

    #[test]
    fn metainfo_mutated_real_torrent(e in edits()) {
        check_bounded(&mutate(sample_torrent(), &e), |b| { let _ = Metainfo::from_bytes(b); });
    }

    #[test]
    fn metainfo_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_bounded(&bytes, |b| { let _ = Metainfo::from_bytes(b); });
    }

    #[test]
    fn metainfo_mutated_v2_and_hybrid_torrents(e in edits(), hybrid in any::<bool>()) {
        let fixture: &[u8] = if hybrid {
            include_bytes!("data/v2/hybrid-multi.torrent")
        } else {
            include_bytes!("data/v2/v2-multi.torrent")
        };
        check_bounded(&mutate(fixture.to_vec(), &e), |b| {
            if let Ok(m) = Metainfo::from_bytes_any_version(b) {
                // The layout and hashes of whatever parsed are computed without panicking.
                for i in 0..m.info.lengths.piece_count().min(1000) {
                    let _ = (m.info.v2_piece(i), m.info.v2_piece_hash(i));
                }
            }
        });
    }

    #[test]
    fn hash_messages(id in 21u8..24, header in prop::collection::vec(any::<u8>(), 48), tail in prop::collection::vec(any::<u8>(), 0..2048), small in any::<bool>()) {
        // Half the time, small header numbers, so that the shape checks pass and the counts are read.
        let mut payload = header;
        if small {
            for (i, b) in payload[32..].iter_mut().enumerate() {
                *b = if i % 4 == 3 { *b % 8 } else { 0 };
            }
        }
        payload.extend(&tail);
        let mut frame = bytes::BytesMut::new();
        frame.extend_from_slice(&(1 + payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&[id]);
        frame.extend_from_slice(&payload);
        check_bounded(&frame.clone(), |_| {
            let mut codec = Codec::new(1000).with_v2();
            while let Ok(Some(m)) = codec.decode(&mut frame) {
                if let pixtorrent::wire::Message::Hashes(h) = m {
                    let _ = h.proven_node();
                }
            }
        });
    }

    #[test]
    fn http_replies(e in edits(), junk in prop::collection::vec(any::<u8>(), 0..256)) {
        let mutated = mutate(sample_reply(), &e);
        for input in [&mutated[..], &junk[..]] {
            check_bounded(input, |b| {
                let _ = parse_announce(b);
                let _ = parse_scrape(b);
            });
        }
    }

    #[test]
    fn udp_replies(bytes in prop::collection::vec(any::<u8>(), 0..256), v6 in any::<bool>(), matching in any::<bool>()) {
        // Make the transaction id match half the time so the body parsers run, for IPv4 and IPv6 alike.
        let tid = if bytes.len() >= 8 && matching { u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) } else { 0 };
        check_bounded(&bytes, |b| {
            for action in [Action::Connect, Action::Announce, Action::Scrape, Action::Error] {
                let _ = parse_reply(b, tid, action, v6);
            }
        });
    }

    #[test]
    fn udp_requests(bytes in prop::collection::vec(any::<u8>(), 0..256), action in 0u8..5) {
        // Half the inputs get a plausible header (action 0-4) so the body decoders run.
        let mut b = bytes;
        if b.len() >= 16 && action < 4 {
            b[8..12].copy_from_slice(&u32::from(action).to_be_bytes());
        }
        check_bounded(&b, |b| {
            let _ = pixtorrent::tracker::proto::udp::decode_request(b, 74);
            let _ = server_udp::parse(b);
        });
    }

    #[test]
    fn announce_queries(q in "[a-z_=&%0-9A-F+]{0,300}", junk in prop::collection::vec(any::<u8>(), 0..256)) {
        let junk = String::from_utf8_lossy(&junk).into_owned();
        for input in [q.as_str(), junk.as_str()] {
            let _ = query::parse_announce(input);
            let _ = query::parse_scrape(input);
        }
    }
}

#[test]
fn pathological_documents_stay_bounded() {
    // The worst shapes for the tree: many tiny values, many keys, deep nesting.
    let mut many_lists = b"l".to_vec();
    many_lists.extend(std::iter::repeat_n(&b"le"[..], 500_000).flatten());
    many_lists.push(b'e');
    let mut many_keys = b"d".to_vec();
    for i in 0..100_000u32 {
        many_keys.extend_from_slice(format!("{}:{:x}0:", format!("{i:x}").len(), i).as_bytes());
    }
    many_keys.push(b'e');
    let deep = vec![b'l'; 1_000_000];
    // Each one-key dictionary makes bip_bencode allocate a map node (~780 bytes for 6 input bytes): 4 MB
    // of these once cost 518 MB. Now the scan refuses the document before any tree is built.
    let mut dicts = b"l".to_vec();
    dicts.extend(std::iter::repeat_n(&b"d0:0:e"[..], 666_000).flatten());
    dicts.push(b'e');
    let peak = peak_heap(|| Metainfo::from_bytes(&dicts).map(|_| ()));
    assert!(
        peak < FIXED_ALLOWANCE,
        "refusing 4 MB of dictionaries allocated {peak} bytes"
    );
    // The largest such document under the budget decodes within the budget.
    let fits = Limits::TORRENT.max_tree_bytes / (2 * bencode::VALUE_COST + bencode::DICT_COST) - 1;
    let mut within = b"l".to_vec();
    within.extend(std::iter::repeat_n(&b"d0:0:e"[..], fits).flatten());
    within.push(b'e');
    let peak = peak_heap(|| bencode::decode(&within, Limits::TORRENT).map(|_| ()));
    assert!(
        peak <= Limits::TORRENT.max_tree_bytes,
        "{peak} bytes for a document the budget allows"
    );
    for doc in [many_lists, many_keys, deep] {
        check_bounded(&doc, |b| {
            let _ = bencode::decode(b, Limits::TORRENT);
            let _ = Metainfo::from_bytes(b);
        });
    }
    // Over the item limit: refused by the scan before any tree is built.
    let mut too_many = b"l".to_vec();
    too_many.extend(std::iter::repeat_n(&b"0:"[..], Limits::TORRENT.max_items + 1).flatten());
    too_many.push(b'e');
    let peak = peak_heap(|| bencode::decode(&too_many, Limits::TORRENT).map(|_| ()));
    assert!(peak < FIXED_ALLOWANCE, "refusal allocated {peak} bytes");
}
