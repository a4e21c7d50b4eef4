//! The two machines against each other (every method combination, random pads, byte-by-byte
//! delivery, payload after the handshake both ways) and against hostile bytes.
use super::*;
use rand::SeedableRng;

const HASH: [u8; 20] = [7; 20];
const IA: &[u8] = b"\x13BitTorrent protocol........the rest of our handshake";

/// Runs A and B until both finish, delivering at most `chunk` bytes at a time; A's payload after
/// the handshake is `after`.
fn run(a_methods: u32, b_methods: u32, chunk: usize, seed: u64) -> Result<(Done, Done), MseError> {
    run_with(a_methods, b_methods, false, chunk, seed)
}

fn run_with(
    a_methods: u32,
    b_methods: u32,
    b_prefers_plaintext: bool,
    chunk: usize,
    seed: u64,
) -> Result<(Done, Done), MseError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut a = Handshake::initiator(&mut rng, HASH, a_methods, IA.to_vec());
    let mut b = Handshake::responder(&mut rng, vec![[1; 20], HASH], b_methods);
    if b_prefers_plaintext {
        b = b.preferring_plaintext();
    }
    let (mut a_done, mut b_done) = (None, None);
    let (mut to_b, mut to_a) = (Vec::new(), Vec::new());
    for _ in 0..10_000 {
        to_b.extend(a.output());
        to_a.extend(b.output());
        if a_done.is_some() && b_done.is_some() {
            break;
        }
        if b_done.is_none() && !to_b.is_empty() {
            let n = chunk.min(to_b.len());
            let part: Vec<u8> = to_b.drain(..n).collect();
            if let Progress::Done(d) = b.feed(&part)? {
                b_done = Some(*d);
            }
        }
        if a_done.is_none() && !to_a.is_empty() {
            let n = chunk.min(to_a.len());
            let part: Vec<u8> = to_a.drain(..n).collect();
            if let Progress::Done(d) = a.feed(&part)? {
                a_done = Some(*d);
            }
        }
    }
    Ok((a_done.expect("A done"), b_done.expect("B done")))
}

#[test]
fn rc4_is_chosen_when_both_allow_it_and_the_streams_pair_up() {
    for seed in 0..8 {
        let (mut a, mut b) = run(
            CRYPTO_RC4 | CRYPTO_PLAINTEXT,
            CRYPTO_RC4 | CRYPTO_PLAINTEXT,
            1000,
            seed,
        )
        .unwrap();
        assert_eq!((a.method, b.method), (CRYPTO_RC4, CRYPTO_RC4));
        assert_eq!(b.info_hash, HASH, "B found the torrent by req2 xor req3");
        assert_eq!(b.ia, IA, "the initial payload arrived decrypted");
        let (sa, sb) = (a.streams.as_mut().unwrap(), b.streams.as_mut().unwrap());
        let mut msg = b"payload after the handshake".to_vec();
        sa.send.apply(&mut msg);
        sb.receive.apply(&mut msg);
        assert_eq!(msg, b"payload after the handshake");
        let mut back = b"and back".to_vec();
        sb.send.apply(&mut back);
        sa.receive.apply(&mut back);
        assert_eq!(back, b"and back");
    }
}

#[test]
fn byte_by_byte_delivery_works_the_same() {
    let (a, b) = run(CRYPTO_RC4, CRYPTO_RC4, 1, 3).unwrap();
    assert_eq!((a.method, b.method), (CRYPTO_RC4, CRYPTO_RC4));
    assert_eq!(b.ia, IA);
}

#[test]
fn plaintext_is_chosen_when_one_side_allows_only_it() {
    let (a, b) = run(CRYPTO_RC4 | CRYPTO_PLAINTEXT, CRYPTO_PLAINTEXT, 300, 4).unwrap();
    assert_eq!((a.method, b.method), (CRYPTO_PLAINTEXT, CRYPTO_PLAINTEXT));
    assert!(a.streams.is_none() && b.streams.is_none());
    assert_eq!(b.ia, IA, "the IA is encrypted even then");
}

#[test]
fn no_common_method_fails() {
    assert!(matches!(
        run(CRYPTO_PLAINTEXT, CRYPTO_RC4, 1000, 5),
        Err(MseError::NoMethod { .. })
    ));
}

#[test]
fn an_unknown_torrent_is_refused() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let mut a = Handshake::initiator(&mut rng, [9; 20], CRYPTO_RC4, IA.to_vec());
    let mut b = Handshake::responder(&mut rng, vec![HASH], CRYPTO_RC4);
    let ya = a.output();
    assert!(matches!(b.feed(&ya), Ok(Progress::More)));
    let yb = b.output();
    assert!(matches!(a.feed(&yb), Ok(Progress::More)));
    let step3 = a.output();
    assert!(matches!(b.feed(&step3), Err(MseError::UnknownTorrent)));
}

#[test]
fn hostile_bytes_fail_cleanly() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // A degenerate key.
    let mut b = Handshake::responder(&mut rng, vec![HASH], CRYPTO_RC4);
    assert!(matches!(b.feed(&[0u8; 96]), Err(MseError::BadKey)));
    // A valid key followed by 2000 bytes of garbage: no req1 within the padding bound.
    let mut b = Handshake::responder(&mut rng, vec![HASH], CRYPTO_RC4);
    let a = Handshake::initiator(&mut rng, HASH, CRYPTO_RC4, Vec::new());
    let mut junk = a.keys.public().to_vec();
    junk.extend(std::iter::repeat_n(0xAAu8, 2000));
    let mut failed = None;
    for c in junk.chunks(100) {
        match b.feed(c) {
            Ok(Progress::More) => {}
            Ok(Progress::Done(_)) => panic!("accepted garbage"),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    assert_eq!(failed, Some(MseError::NoSync));
    // A wrong VC: a step 3 whose encrypted part is altered.
    let mut a = Handshake::initiator(&mut rng, HASH, CRYPTO_RC4, IA.to_vec());
    let mut b = Handshake::responder(&mut rng, vec![HASH], CRYPTO_RC4);
    let _ = b.feed(&a.output());
    let _ = a.feed(&b.output());
    let mut step3 = a.output();
    step3[40] ^= 0xff; // the first VC byte, after req1 and req2^req3
    assert!(matches!(b.feed(&step3), Err(MseError::BadVc)));
}

#[test]
fn plaintext_handshakes_are_told_apart() {
    assert!(looks_plaintext(b"\x13BitTorrent protocol\0\0\0\0"));
    assert!(looks_plaintext(b"\x13Bit"));
    assert!(!looks_plaintext(b"\x13BitX"));
    assert!(!looks_plaintext(&[0x96, 0xe1, 0x12]));
    assert!(!looks_plaintext(b""));
}

#[test]
fn a_responder_preferring_plaintext_still_takes_rc4_when_it_is_all_that_is_offered() {
    let both = CRYPTO_RC4 | CRYPTO_PLAINTEXT;
    let (a, b) = run_with(both, both, true, 500, 11).unwrap();
    assert_eq!((a.method, b.method), (CRYPTO_PLAINTEXT, CRYPTO_PLAINTEXT));
    let (a, b) = run_with(CRYPTO_RC4, both, true, 500, 12).unwrap();
    assert_eq!((a.method, b.method), (CRYPTO_RC4, CRYPTO_RC4));
    assert!(a.streams.is_some() && b.streams.is_some());
}
