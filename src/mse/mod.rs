//! Message Stream Encryption / Protocol Encryption (MSE/PE, as libtorrent, Transmission and Vuze
//! implement it). So far its pure crypto core ([`crypto`]): the 768-bit Diffie–Hellman exchange,
//! the `req1`/`req2`/`req3` synchronisation hashes, and the RC4 streams with their first 1024 bytes
//! discarded. The handshake state machines and the engine's use of them come next (issue 15).

pub mod crypto;
pub mod handshake;
