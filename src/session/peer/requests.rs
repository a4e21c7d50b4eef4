//! The requesting side of a peer task: topping its window up from the picker, handing blocks back
//! (choke, stall), and the stall rule (see [`crate::pipeline::Pipeline::stall_after`]).

use std::time::Instant;

use super::{Conn, SNUB_PAUSE};
use crate::types::BlockRef;
use crate::wire::Message;

impl Conn {
    /// The peer choked us without BEP 6: every request is void (BEP 3); ours go back to the picker.
    pub(super) fn return_pending(&mut self) {
        let live = self.pending.clear();
        self.give_back(&live);
    }

    /// Hands `blocks` back to the picker and wakes the peers that may fetch them.
    pub(super) fn give_back(&mut self, blocks: &[BlockRef]) {
        if blocks.is_empty() {
            return;
        }
        self.ctx.lock().unrequest(self.key, blocks);
        self.ctx.blocks_freed.notify_waiters();
    }

    /// A peer that sent nothing for [`Pipeline::stall_after`] (its own measured service time) with
    /// requests in flight has stalled: its blocks are offered to the other peers at once (libtorrent
    /// does the same for snubbed peers), its requests stay open in case it answers late, and it gets
    /// no new ones for [`SNUB_PAUSE`] unless it answers. Released requests for blocks that arrived
    /// from elsewhere are cancelled.
    pub(super) fn check_stall(&mut self, now: Instant) {
        if self.pending.live().next().is_some()
            && now.duration_since(self.last_block) > self.pipeline.stall_after()
        {
            let released = self.pending.release();
            tracing::debug!(
                peer = %self.addr,
                n = released.len(),
                after = ?self.pipeline.stall_after(),
                "stalled: its requests offered to other peers; snubbed"
            );
            self.give_back(&released);
            // A BEP 6 peer that choked us and neither served nor rejected: its blocks go to
            // others, but it is not snubbed for the choke.
            if !self.peer_choking {
                self.snubbed_until = Some(now + SNUB_PAUSE);
            }
        }
        if self.pending.len() > self.pending.live().count() {
            let t = self.ctx.lock();
            let gone = self.pending.prune_released(|b| t.picker().wants_block(b));
            drop(t);
            for b in gone {
                Message::cancel(b).encode(&mut self.out);
            }
        }
    }

    /// Whether we would ask this peer for more blocks now (it serves us and its window has room).
    pub(super) fn has_room(&self) -> bool {
        self.may_request(crate::session::now())
            && self.down_wait.is_none_or(|t| crate::session::now() >= t)
            && self.am_interested
            && self
                .snubbed_until
                .is_none_or(|t| crate::session::now() >= t)
            && self.pending.len() < self.pipeline.target()
    }

    /// Tops the request window up from the picker.
    pub(super) fn refill(&mut self) {
        let now = crate::session::now();
        if !self.am_interested || !self.may_request(now) || self.down_wait.is_some_and(|t| now < t)
        {
            return;
        }
        if self.snubbed_until.is_some_and(|t| now < t) {
            return;
        }
        let want = self.pipeline.target().saturating_sub(self.pending.len());
        // Ask in batches: one lock and one write per several blocks.
        if want == 0 || (want < 4 && !self.pending.is_empty()) {
            return;
        }
        let Some(pickable) = self.pickable() else {
            return;
        };
        let blocks = { self.ctx.lock().pick(self.key, &pickable, want) };
        drop(pickable);
        if blocks.is_empty() {
            return;
        }
        if self.pending.is_empty() {
            self.last_block = now;
        }
        // --max-download-rate: these bytes are reserved now; in debt, the next batch waits.
        let bytes: u64 = blocks.iter().map(|b| u64::from(b.len)).sum();
        let wait = self.ctx.engine.limits.down(bytes);
        if !wait.is_zero() {
            self.down_wait = Some(now + wait);
        }
        for b in blocks {
            Message::request(b).encode(&mut self.out);
            self.pending.push(b, now);
        }
    }
}
