//! Message Stream Encryption / Protocol Encryption (MSE/PE, as libtorrent, Transmission and Vuze
//! implement it): the crypto ([`crypto`]: 768-bit Diffie–Hellman, the `req1`/`req2`/`req3`
//! hashes, RC4 with 1024 bytes discarded), the handshake as sans-IO state machines
//! ([`handshake`]), and the RC4 stream the peer wire runs on afterwards ([`stream`]). Checked
//! against python3-libtorrent both ways (`tests/mse_interop.rs`); `session::mse` drives them on
//! real connections.

pub mod crypto;
pub mod handshake;
pub mod stream;
