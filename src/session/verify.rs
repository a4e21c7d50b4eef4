//! Hashing and storing complete pieces off the async workers: the torrent's piece check (SHA-1,
//! SHA-256 Merkle root, or both: [`crate::storage::PieceCheck`]) on the blocking pool, a good piece
//! written to storage, then the verdict reported to the torrent (have broadcast, or blame).

use std::sync::Arc;

use super::state::{Complete, Source};
use super::{Ctx, Status};
use crate::merkle::Hash;
use crate::storage::StorageError;
use crate::types::PieceIndex;

/// What the blocking pool made of one piece: whether it was good and stored (or the storage
/// error), its buffer back, and for a failed v2 piece worth asking peers about, its blocks' hashes
/// and their senders ([`super::blame`]).
type Checked = (
    Result<bool, StorageError>,
    Vec<u8>,
    Option<(Vec<Hash>, Vec<Option<Source>>)>,
);

/// Checks piece `piece` and writes it to storage if good (blocking: run on the blocking pool).
fn check_and_store(
    ctx: &Ctx,
    piece: PieceIndex,
    data: Vec<u8>,
    senders: Vec<Option<Source>>,
) -> Checked {
    if !ctx.check.matches(piece.get(), &data) {
        let blame =
            super::blame::leaves_of(ctx, piece.get(), &data, &senders).map(|l| (l, senders));
        return (Ok(false), data, blame);
    }
    (
        ctx.storage.write_piece(piece, &data).map(|()| true),
        data,
        None,
    )
}

/// Hashes `c` and stores it if good, in the background.
pub fn spawn(ctx: Arc<Ctx>, c: Complete) {
    tokio::spawn(async move {
        let Complete {
            piece,
            data,
            contributors,
            senders,
        } = c;
        let len = data.len() as u32;
        let c2 = ctx.clone();
        let outcome =
            tokio::task::spawn_blocking(move || check_and_store(&c2, piece, data, senders)).await;
        let (ok, data) = match outcome {
            Ok((Ok(ok), data, blame)) => {
                if let Some((got, senders)) = blame {
                    super::blame::start(&ctx, piece.get(), got, senders);
                }
                (ok, data)
            }
            Ok((Err(e), _, _)) => {
                ctx.fail(e.to_string());
                return;
            }
            Err(e) => {
                ctx.fail(format!("hashing task failed: {e}"));
                return;
            }
        };
        let (banned, complete, no_mirror_left) = {
            let mut t = ctx.lock();
            let banned = t.verified(piece, ok, len, &contributors);
            t.recycle(data);
            let web_failed = !ok && matches!(contributors[..], [(Source::Web(_), _)]);
            let no_mirror_left = web_failed
                && t.web()
                    .iter()
                    .all(|w| !w.live() || !w.has().get(piece.get()));
            (banned, t.picker().is_complete(), no_mirror_left)
        };
        if no_mirror_left {
            warn_no_mirror(&ctx, piece, len);
        }
        if ok {
            tracing::trace!(piece = piece.get(), "piece verified");
        } else {
            tracing::debug!(
                piece = piece.get(),
                ?contributors,
                "piece failed its hash check"
            );
        }
        for source in banned {
            match source {
                Source::Peer(addr) => tracing::info!(
                    peer = %addr,
                    "banned: took part in pieces that failed the hash check"
                ),
                Source::Web(i) => {
                    let url = ctx.lock().web().get(i).map(|w| w.url().to_string());
                    tracing::warn!(
                        url = url.as_deref().unwrap_or("?"),
                        "web seed dropped: pieces failed the hash check"
                    );
                }
            }
        }
        if complete {
            ctx.status.send_if_modified(|s| {
                let changed = *s == Status::Running;
                if changed {
                    *s = Status::Complete;
                }
                changed
            });
        }
    });
}

/// Says which files a piece that every web seed serves wrong lies in: only peers can supply it.
fn warn_no_mirror(ctx: &Ctx, piece: crate::types::PieceIndex, len: u32) {
    let start = ctx.lengths.piece_offset(piece);
    let end = start + u64::from(len);
    let files: Vec<String> = ctx
        .files
        .iter()
        .filter(|f| f.offset < end && f.offset + f.length > start && !f.attr.pad)
        .map(|f| f.display_path())
        .collect();
    tracing::warn!(
        piece = piece.get(),
        "every web seed serves piece {} differently from the torrent ({} changed since the \
         torrent was made?); only peers can supply it",
        piece.get(),
        files.join(", ")
    );
}
