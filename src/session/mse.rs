//! MSE/PE on real connections: the outgoing initiator (our BitTorrent handshake as the initial
//! payload) and the incoming responder (the torrent found among the engine's), each driven over
//! the socket with a deadline, giving the stream the peer wire then runs on.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::mse::crypto::{CRYPTO_PLAINTEXT, CRYPTO_RC4};
use crate::mse::handshake::{Done, Handshake, MseError, Progress};
use crate::mse::stream::EncryptedStream;
use crate::net::PeerStream;

/// Time for a whole MSE handshake.
pub const MSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The user's choice (`--encryption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encryption {
    /// Try MSE first, accept both, fall back to plaintext (the default).
    #[default]
    Prefer,
    /// MSE with RC4 only, both ways; plaintext peers are refused.
    Require,
    /// Plaintext only.
    Disable,
}

impl Encryption {
    fn methods(self) -> u32 {
        match self {
            Encryption::Require => CRYPTO_RC4,
            _ => CRYPTO_RC4 | CRYPTO_PLAINTEXT,
        }
    }
}

/// Why an MSE exchange ended.
#[derive(Debug, thiserror::Error)]
pub enum MseFailure {
    /// The protocol failed.
    #[error("MSE: {0}")]
    Protocol(#[from] MseError),
    /// The socket failed or closed.
    #[error("MSE: {0}")]
    Io(#[from] std::io::Error),
    /// No end within [`MSE_TIMEOUT`].
    #[error("MSE handshake timed out")]
    TimedOut,
}

async fn drive<S: PeerStream>(
    stream: &mut S,
    hs: &mut Handshake,
    first: &[u8],
) -> Result<Done, MseFailure> {
    let exchange = async {
        let mut progress = hs.feed(first)?;
        let mut buf = vec![0u8; 4096];
        loop {
            let out = hs.output();
            if !out.is_empty() {
                stream.write_all(&out).await?;
            }
            if let Progress::Done(done) = progress {
                return Ok(*done);
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            progress = hs.feed(&buf[..n])?;
        }
    };
    tokio::time::timeout(MSE_TIMEOUT, exchange)
        .await
        .map_err(|_| MseFailure::TimedOut)?
}

/// Opens MSE on an outgoing `stream` for `info_hash`, with `ours` (our 68-byte handshake) as the
/// initial payload; the stream to read the peer's handshake from.
pub async fn initiate<S: PeerStream>(
    mut stream: S,
    info_hash: [u8; 20],
    mode: Encryption,
    ours: &[u8],
) -> Result<EncryptedStream<S>, MseFailure> {
    let mut hs = Handshake::initiator(&mut rand::rng(), info_hash, mode.methods(), ours.to_vec());
    let done = drive(&mut stream, &mut hs, &[]).await?;
    Ok(match done.streams {
        Some(streams) => EncryptedStream::new(stream, streams, done.rest),
        None => EncryptedStream::negotiated_plain(stream, done.rest),
    })
}

/// An outgoing connection ready for the BitTorrent handshake. (Moved once, straight into the peer
/// task: boxing the larger variant would only add an allocation.)
#[allow(clippy::large_enum_variant)]
pub enum Opened<S> {
    /// Through MSE (RC4 or negotiated plaintext); our handshake went as its initial payload.
    Mse(EncryptedStream<S>),
    /// Plaintext: our handshake is still to send.
    Plain(S),
}

/// Why [`open`] failed.
pub enum OpenError<E> {
    /// MSE failed, and `prefer` did not allow the plaintext retry.
    Mse(MseFailure),
    /// The new connection for the plaintext retry failed.
    Redial(E),
}

/// Opens the outgoing `stream` to `addr` as `mode` says: plaintext under `disable`; else MSE with
/// `ours` (our BitTorrent handshake) as the initial payload, and under `prefer` a failed MSE is
/// retried once in plaintext on a new connection from `redial`, as libtorrent does.
pub async fn open<S, F, E>(
    stream: S,
    addr: std::net::SocketAddr,
    info_hash: [u8; 20],
    mode: Encryption,
    ours: &[u8],
    redial: impl FnOnce() -> F,
) -> Result<Opened<S>, OpenError<E>>
where
    S: PeerStream,
    F: std::future::Future<Output = Result<S, E>>,
{
    if mode == Encryption::Disable {
        return Ok(Opened::Plain(stream));
    }
    match initiate(stream, info_hash, mode, ours).await {
        Ok(stream) => {
            tracing::trace!(peer = %addr, rc4 = stream.encrypted(), "MSE done");
            Ok(Opened::Mse(stream))
        }
        Err(e) if mode == Encryption::Prefer => {
            tracing::debug!(peer = %addr, error = %e, "MSE failed; retrying in plaintext");
            redial().await.map(Opened::Plain).map_err(OpenError::Redial)
        }
        Err(e) => Err(OpenError::Mse(e)),
    }
}

/// Answers MSE on an incoming `stream` whose first bytes were `first`, for one of `torrents`;
/// the info-hash it named and the stream, whose next bytes are the peer's BitTorrent handshake.
pub async fn respond<S: PeerStream>(
    mut stream: S,
    first: &[u8],
    torrents: Vec<[u8; 20]>,
    mode: Encryption,
) -> Result<([u8; 20], EncryptedStream<S>), MseFailure> {
    let mut hs = Handshake::responder(&mut rand::rng(), torrents, mode.methods());
    if mode == Encryption::Prefer {
        hs = hs.preferring_plaintext();
    }
    let done = drive(&mut stream, &mut hs, first).await?;
    let mut early = done.ia;
    early.extend(done.rest);
    let info_hash = done.info_hash;
    Ok(match done.streams {
        Some(streams) => (info_hash, EncryptedStream::new(stream, streams, early)),
        None => (info_hash, EncryptedStream::negotiated_plain(stream, early)),
    })
}
