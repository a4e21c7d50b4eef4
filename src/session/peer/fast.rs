//! The BEP 6 side of a peer connection (Fast extension, when both handshakes set its bit): our
//! first availability message and the allowed-fast set we grant; the peer's `have all` / `have
//! none`, `allowed fast`, `suggest` and `reject`; and the rejects we owe. A peer without the bit that
//! sends any of these is dropped (BEP 6 says so).
//!
//! Rejects never start a re-request storm: a block rejected while we are choked goes back to the
//! picker and is not asked of this peer again until it unchokes us (or, if it was an allowed-fast
//! piece, the piece leaves this peer's allowed set); one rejected while unchoked (its queue is full)
//! pauses our requests to it for [`REJECT_PAUSE`].

use std::time::{Duration, Instant};

use super::{Conn, PeerError};
use crate::bitfield::Bitfield;
use crate::wire::fast::{self, ALLOWED_FAST_K, MAX_ALLOWED_FROM_PEER};
use crate::wire::Message;

/// No new requests to a peer for this long after it rejected one while unchoking us.
pub(super) const REJECT_PAUSE: Duration = Duration::from_secs(1);

impl Conn {
    /// Our first availability message, then, to a BEP 6 peer, the allowed-fast pieces we have of
    /// its canonical set (granted: served while we choke it, as long as it is starting).
    pub(super) fn greet_availability(&mut self) {
        if let Some(msg) = fast::availability(&self.ours, self.fast) {
            msg.encode(&mut self.out);
        }
        if !self.fast {
            return;
        }
        let set = fast::allowed_fast_set(
            self.addr.ip(),
            self.ctx.info_hash,
            self.ctx.lengths.piece_count(),
            ALLOWED_FAST_K,
        );
        for &i in &set {
            if self.ours.get(i) {
                Message::AllowedFast(i).encode(&mut self.out);
            }
        }
        self.uploads.fast(set);
    }

    /// A BEP 6 message from the peer.
    pub(super) fn on_fast(&mut self, msg: Message) -> Result<(), PeerError> {
        if !self.fast {
            return Err(PeerError::Dropped(
                "sent a Fast-extension message without the BEP 6 bit",
            ));
        }
        match msg {
            // Once is enough: a repeated `have all` costs nothing.
            Message::HaveAll if !self.has.is_full() => {
                self.add_pieces(0..self.ctx.lengths.piece_count())
            }
            Message::AllowedFast(i)
                if self.peer_allowed.len() < MAX_ALLOWED_FROM_PEER
                    && !self.peer_allowed.contains(&i) =>
            {
                self.peer_allowed.push(i);
            }
            Message::Reject {
                index,
                begin,
                length,
            } => self.on_reject(index, begin, length, crate::session::now()),
            // `have none`: nothing to add. `suggest`: a hint; our picker keeps its own order.
            _ => {}
        }
        Ok(())
    }

    /// The peer will not serve one of our requests: the block goes back to the picker.
    fn on_reject(&mut self, index: u32, begin: u32, length: u32, now: Instant) {
        let Some(block) = self.ctx.lengths.block_at(index, begin, length) else {
            return;
        };
        // Not pending: a reject answering our cancel, or for a request already given up. Ignored.
        let Some(live) = self.pending.remove(block) else {
            return;
        };
        self.rejected += 1;
        if live {
            self.give_back(&[block]);
        }
        if self.peer_choking {
            // It does not honour this piece as allowed fast (any more): stop asking for it.
            self.peer_allowed.retain(|&p| p != index);
        } else {
            self.reject_pause = Some(now + REJECT_PAUSE);
        }
    }

    /// Sends the rejects the upload queue owes the peer.
    pub(super) fn send_rejects(&mut self) {
        for w in self.uploads.take_rejects() {
            Message::Reject {
                index: w.piece.get(),
                begin: w.begin,
                length: w.length,
            }
            .encode(&mut self.out);
        }
    }

    /// Whether we may request from this peer at all now: it unchokes us, or it chokes us but
    /// allowed us some pieces (BEP 6); and no reject pause runs.
    pub(super) fn may_request(&self, now: Instant) -> bool {
        (!self.peer_choking || (self.fast && !self.peer_allowed.is_empty()))
            && self.reject_pause.is_none_or(|t| now >= t)
    }

    /// What we may pick from this peer now: all it has when it unchokes us, else only the
    /// allowed-fast pieces it has (`None`: nothing).
    pub(super) fn pickable(&self) -> Option<std::borrow::Cow<'_, Bitfield>> {
        if !self.peer_choking {
            return Some(std::borrow::Cow::Borrowed(&self.has));
        }
        let mut only = Bitfield::new(self.has.len());
        let mut any = false;
        for &i in &self.peer_allowed {
            if self.has.get(i) {
                any |= only.set(i);
            }
        }
        any.then_some(std::borrow::Cow::Owned(only))
    }
}
