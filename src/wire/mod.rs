//! The peer wire protocol (BEP 3) as pure encode/decode: the 68-byte [`handshake`] and the
//! length-prefixed [`message`]s (BEP 52's [`hashes`] among them), with the limits that let a hostile
//! peer cost us nothing. No sockets.

pub mod extension;
pub mod fast;
pub mod handshake;
pub mod hashes;
pub mod message;
pub mod pex;
pub mod ut_metadata;

pub use handshake::Handshake;
pub use message::{Codec, Message};

/// Why a peer's bytes were refused. Each one means: drop that peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The handshake does not start with `\x13BitTorrent protocol`.
    #[error("not a BitTorrent handshake")]
    NotBitTorrent,
    /// The handshake names another torrent.
    #[error("handshake for another torrent ({0})")]
    WrongInfoHash(crate::types::InfoHash),
    /// The peer id is our own: we connected to ourselves.
    #[error("connected to ourselves")]
    SelfConnection,
    /// A frame longer than anything this torrent needs.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLong { len: u32, max: u32 },
    /// A known message with the wrong length for its type.
    #[error("message id {id} with a bad length of {len} bytes")]
    BadLength { id: u8, len: u32 },
    /// A `bitfield` of the wrong size or with spare bits set.
    #[error("bitfield of {len} bytes does not fit {pieces} pieces")]
    BadBitfield { len: usize, pieces: u32 },
    /// A `have` for a piece the torrent does not have.
    #[error("have for piece {index} of {pieces}")]
    HaveOutOfRange { index: u32, pieces: u32 },
    /// A BEP 52 hash message of a shape BEP 52 forbids, or over our limits.
    #[error("hash message (id {id}) refused: {why}")]
    BadHashMessage { id: u8, why: &'static str },
}
