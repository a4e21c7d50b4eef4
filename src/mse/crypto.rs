//! MSE's cryptography, pure: Diffie–Hellman over the 768-bit prime P with generator 2 (`num-bigint`),
//! SHA-1 of labelled inputs, and RC4 (RustCrypto `rc4`) keyed by `HASH('keyA'|'keyB', S, SKEY)` with
//! the first 1024 bytes of keystream discarded.

use num_bigint::BigUint;
use rc4::{KeyInit, Rc4, StreamCipher};
use sha1::{Digest, Sha1};

/// Bytes of a public key or shared secret on the wire (768 bits).
pub const DH_LEN: usize = 96;
/// Keystream bytes discarded before use.
pub const DISCARD: usize = 1024;
/// The verification constant: 8 zero bytes, encrypted.
pub const VC: [u8; 8] = [0; 8];
/// `crypto_provide` / `crypto_select` bits.
pub const CRYPTO_PLAINTEXT: u32 = 0x01;
/// RC4 for the rest of the connection.
pub const CRYPTO_RC4: u32 = 0x02;

/// The MSE prime P (768 bits).
const P_HEX: &[u8] = b"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563";

fn prime() -> BigUint {
    BigUint::parse_bytes(P_HEX, 16).unwrap_or_default()
}

fn to_wire(n: &BigUint) -> [u8; DH_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; DH_LEN];
    let at = DH_LEN.saturating_sub(bytes.len());
    out[at..].copy_from_slice(&bytes[bytes.len().saturating_sub(DH_LEN)..]);
    out
}

/// Why a Diffie–Hellman value from a peer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the peer's Diffie-Hellman key is out of range")]
pub struct BadKey;

/// Our side of the exchange: a 160-bit private key and its public key `2^X mod P`.
#[derive(Clone)]
pub struct KeyPair {
    private: BigUint,
    public: [u8; DH_LEN],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPair(..)")
    }
}

impl KeyPair {
    /// A fresh key pair.
    pub fn generate(rng: &mut impl rand::Rng) -> KeyPair {
        let mut x = [0u8; 20];
        rng.fill_bytes(&mut x);
        KeyPair::from_private(&x)
    }

    /// The pair of a given 160-bit private key (tests, known answers).
    pub fn from_private(x: &[u8; 20]) -> KeyPair {
        let private = BigUint::from_bytes_be(x);
        let public = to_wire(&BigUint::from(2u8).modpow(&private, &prime()));
        KeyPair { private, public }
    }

    /// Our public key, as sent.
    pub fn public(&self) -> &[u8; DH_LEN] {
        &self.public
    }

    /// The shared secret S from the peer's public key; a key of 0, 1 or P-1 and above (which would
    /// make S guessable) is refused.
    pub fn shared(&self, theirs: &[u8; DH_LEN]) -> Result<[u8; DH_LEN], BadKey> {
        let p = prime();
        let y = BigUint::from_bytes_be(theirs);
        let one = BigUint::from(1u8);
        if y <= one || y >= &p - &one {
            return Err(BadKey);
        }
        Ok(to_wire(&y.modpow(&self.private, &p)))
    }
}

/// SHA-1 of the concatenation of `parts`.
pub fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `HASH('req1', S)`: what the initiator sends for the responder to synchronise on.
pub fn req1(s: &[u8; DH_LEN]) -> [u8; 20] {
    hash(&[b"req1", s])
}

/// `HASH('req2', SKEY) xor HASH('req3', S)`: names the torrent (SKEY is its info-hash) without
/// showing it.
pub fn req2_xor_req3(skey: &[u8; 20], s: &[u8; DH_LEN]) -> [u8; 20] {
    let a = hash(&[b"req2", skey]);
    let b = hash(&[b"req3", s]);
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// The info-hash among `candidates` that `req` (a received `req2 xor req3`) names.
pub fn find_skey<'a>(
    req: &[u8; 20],
    s: &[u8; DH_LEN],
    candidates: impl IntoIterator<Item = &'a [u8; 20]>,
) -> Option<[u8; 20]> {
    candidates
        .into_iter()
        .find(|skey| req2_xor_req3(skey, s) == *req)
        .copied()
}

/// One direction of an RC4 stream, its first [`DISCARD`] bytes thrown away.
pub struct Stream(Rc4);

impl Stream {
    /// The stream keyed by `HASH(label, S, SKEY)`.
    fn new(label: &[u8], s: &[u8; DH_LEN], skey: &[u8; 20]) -> Stream {
        let key = hash(&[label, s, skey]);
        // A 20-byte key is within RC4's 1..=256.
        let mut rc4 = Rc4::new_from_slice(&key).unwrap_or_else(|_| unreachable!());
        let mut discard = [0u8; DISCARD];
        rc4.apply_keystream(&mut discard);
        Stream(rc4)
    }

    /// Encrypts or decrypts `data` in place.
    pub fn apply(&mut self, data: &mut [u8]) {
        self.0.apply_keystream(data);
    }
}

/// Both directions of a connection: what we send and what we receive.
pub struct Streams {
    /// Encrypts what we send.
    pub send: Stream,
    /// Decrypts what we receive.
    pub receive: Stream,
}

impl Streams {
    /// The streams of the side that opened the connection (A): it sends with `keyA`.
    pub fn initiator(s: &[u8; DH_LEN], skey: &[u8; 20]) -> Streams {
        Streams {
            send: Stream::new(b"keyA", s, skey),
            receive: Stream::new(b"keyB", s, skey),
        }
    }

    /// The streams of the side that accepted it (B): it sends with `keyB`.
    pub fn responder(s: &[u8; DH_LEN], skey: &[u8; 20]) -> Streams {
        Streams {
            send: Stream::new(b"keyB", s, skey),
            receive: Stream::new(b"keyA", s, skey),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Known answers computed with Python's own big integers, hashlib and an RC4 of a few lines
    // (which gives RFC 6229's first test vector): an implementation independent of this one.
    const YA: &str = "96e112dab29e8c5272accb9b17b26887ce54a144a4e3b697c7d159b7a817e556b0918db2b4c658e02a87f7e5fb14b18a553e084cbf3dad2d30f16596ccb982d406258c61b30c5c1dae2ddc60bdbd48d79896312aad63238c39e1a633821eb693";
    const S: &str = "994aac6c359990cf4f678a1742b587eb1a5248ec7fcc0d0bcfcb12d2461bc1fe25417b70869697d9ca884832f1c5f2a2fd3318c22a5a6ba170d36aac91405457c1e8137b1534a776865ed353f12422ff6afc58435f8bd443f61dd051a37bcdeb";

    fn pairs() -> (KeyPair, KeyPair) {
        let xa: [u8; 20] = std::array::from_fn(|i| i as u8 + 1);
        let xb: [u8; 20] = std::array::from_fn(|i| i as u8 + 21);
        (KeyPair::from_private(&xa), KeyPair::from_private(&xb))
    }

    #[test]
    fn diffie_hellman_known_answer_and_agreement() {
        let (a, b) = pairs();
        assert_eq!(a.public().to_vec(), hex(YA));
        let s_a = a.shared(b.public()).unwrap();
        let s_b = b.shared(a.public()).unwrap();
        assert_eq!(s_a, s_b, "both sides agree");
        assert_eq!(s_a.to_vec(), hex(S));
        let mut rng = rand::rng();
        let (c, d) = (KeyPair::generate(&mut rng), KeyPair::generate(&mut rng));
        assert_eq!(c.shared(d.public()), d.shared(c.public()));
    }

    #[test]
    fn degenerate_public_keys_are_refused() {
        let (a, _) = pairs();
        let mut one = [0u8; DH_LEN];
        one[DH_LEN - 1] = 1;
        assert_eq!(a.shared(&[0; DH_LEN]), Err(BadKey));
        assert_eq!(a.shared(&one), Err(BadKey));
        assert_eq!(a.shared(&[0xff; DH_LEN]), Err(BadKey), "above P");
        let mut p_minus_1 = to_wire(&prime());
        p_minus_1[DH_LEN - 1] -= 1;
        assert_eq!(a.shared(&p_minus_1), Err(BadKey));
    }

    #[test]
    fn synchronisation_hashes_known_answers_and_torrent_lookup() {
        let s: [u8; DH_LEN] = hex(S).try_into().unwrap();
        assert_eq!(
            req1(&s).to_vec(),
            hex("83c8d8a3d91a5bf40d723666c4258731c8427ccb")
        );
        let skey = [0u8; 20];
        let req = req2_xor_req3(&skey, &s);
        assert_eq!(
            req.to_vec(),
            hex("21a6d5852d7ece9261151d6be401617a0ffbc61f")
        );
        let others = [[1u8; 20], [2u8; 20], skey, [3u8; 20]];
        assert_eq!(find_skey(&req, &s, &others), Some(skey));
        assert_eq!(find_skey(&req, &s, &others[..2]), None);
    }

    #[test]
    fn rc4_streams_discard_1024_bytes_and_pair_up() {
        let s: [u8; DH_LEN] = hex(S).try_into().unwrap();
        let skey = [0u8; 20];
        // keyA = HASH('keyA', S, SKEY); its keystream from byte 1024.
        assert_eq!(
            hash(&[b"keyA", &s, &skey]).to_vec(),
            hex("ae655e22bbf333d87f680b6bd3d07d680183f0eb")
        );
        let mut a = Streams::initiator(&s, &skey);
        let mut zeros = [0u8; 16];
        a.send.apply(&mut zeros);
        assert_eq!(zeros.to_vec(), hex("fcee1fc99a15695a2bfe1db47f26b10d"));
        // What A sends, B decrypts, and the other way round.
        let mut a = Streams::initiator(&s, &skey);
        let mut b = Streams::responder(&s, &skey);
        let mut msg = *b"\x13BitTorrent protocol, and more";
        a.send.apply(&mut msg);
        assert_ne!(&msg[..], b"\x13BitTorrent protocol, and more");
        b.receive.apply(&mut msg);
        assert_eq!(&msg[..], b"\x13BitTorrent protocol, and more");
        let mut back = *b"reply";
        b.send.apply(&mut back);
        a.receive.apply(&mut back);
        assert_eq!(&back, b"reply");
    }
}
