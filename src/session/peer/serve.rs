//! The serving side of a peer task: queued block requests read from storage into the outgoing
//! buffer as `--max-upload-rate` allows, and BEP 52 `hash request`s answered from the torrent's
//! trees or, for leaf hashes, from a piece we hold ([`crate::session::hashes::reply`]).

use super::{Conn, PeerError, MAX_OUT};
use crate::wire::hashes::HashRequest;
use crate::wire::Message;

impl Conn {
    /// Answers a peer's `hash request` at once: `hashes` or `hash reject`.
    pub(super) fn on_hash_request(&mut self, r: &HashRequest) {
        let (ctx, buffered) = (&self.ctx, self.out.len());
        crate::session::hashes::reply(ctx, &self.ours, r, buffered, &mut self.leaf_budget)
            .encode(&mut self.out);
    }

    /// Reads queued requests from storage into the outgoing buffer, up to [`MAX_OUT`] and as
    /// `--max-upload-rate` allows.
    pub(super) fn serve_some(&mut self) -> Result<(), PeerError> {
        while self.out.len() < MAX_OUT && self.up_wait.is_none() {
            let Some(w) = self.uploads.pop() else { break };
            let wait = self.ctx.engine.limits.up(u64::from(w.length));
            if !wait.is_zero() {
                self.up_wait = Some(crate::session::now() + wait);
            }
            let mut data = vec![0u8; w.length as usize];
            if let Err(e) = self.ctx.storage.read(w.piece, w.begin, &mut data) {
                self.ctx.fail(e.to_string());
                return Err(PeerError::Dropped("storage read failed"));
            }
            Message::Piece {
                index: w.piece.get(),
                begin: w.begin,
                data: data.into(),
            }
            .encode(&mut self.out);
            self.up_tick += u64::from(w.length);
            self.up_total += u64::from(w.length);
        }
        Ok(())
    }
}
