//! The serving side of one connection: which of a peer's `request`s we accept (in range, at most
//! 16 KiB, for a piece we have, within a bounded queue), `cancel`, choke state, and, with a peer that
//! speaks BEP 6, the rejects we owe it and the allowed-fast pieces it may fetch while choked. Pure:
//! the peer task reads the blocks, writes them and sends the rejects.

use std::collections::VecDeque;

use crate::bitfield::Bitfield;
use crate::types::{Lengths, PieceIndex, BLOCK_LEN};

/// Requests one peer may have queued with us, as we announce it in `reqq` (BEP 10): libtorrent's
/// `max_allowed_in_request_queue`. 12 bytes an entry, so 24 KB per peer at most.
pub const MAX_QUEUED: usize = 2000;
/// Requests taken past [`MAX_QUEUED`]: clients overshoot what we announce (rtorrent 0.9.8 keeps up to
/// 2048 outstanding, aria2 1.36 up to 256 whatever `reqq` says), and a request we drop is one they
/// wait for until their own timeout. Beyond this the request is dropped, as libtorrent does, and the
/// peer keeps being served.
pub const MAX_QUEUE_HARD: usize = 2 * MAX_QUEUED;
/// Requests dropped (queue full) over a connection's life: past this the peer is flooding us, not
/// pipelining deeply, and is disconnected. No client we know keeps more than [`MAX_QUEUE_HARD`]
/// outstanding, so none drops any; one that keeps its queue past the bound loses only the overshoot
/// (and what it asks again after its timeouts), far below this.
pub const MAX_DROPPED: u32 = 2 * MAX_QUEUE_HARD as u32;

/// Why a request drops the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Outside the torrent or the piece.
    OutOfRange,
    /// Zero or more than 16 KiB.
    BadLength,
    /// A piece we have not announced.
    NotHave,
    /// More than [`MAX_DROPPED`] requests dropped past a full queue.
    Flood,
}

impl Refusal {
    /// The reason, for logs and the dropped-peer error.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::OutOfRange => "requested a block out of range",
            Refusal::BadLength => "requested a block of a bad length",
            Refusal::NotHave => "requested a piece we do not have",
            Refusal::Flood => "flooded us with requests",
        }
    }
}

/// One accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// The piece.
    pub piece: PieceIndex,
    /// Offset inside it.
    pub begin: u32,
    /// Bytes.
    pub length: u32,
}

/// A peer's queue with us.
#[derive(Debug)]
pub struct Uploads {
    queue: VecDeque<Wanted>,
    /// Requests dropped (queue full) over the connection's life.
    dropped: u32,
    /// Whether we choke the peer (requests are then discarded, BEP 3, or rejected, BEP 6).
    pub choking: bool,
    /// The peer speaks BEP 6: a request we will not serve gets a reject, never silence.
    fast: bool,
    /// The allowed-fast pieces we granted the peer (BEP 6).
    granted: Vec<u32>,
    /// The peer is still starting ([`crate::wire::fast::starting`]): its allowed-fast requests are
    /// served while we choke it.
    starting: bool,
    /// Rejects owed to the peer, sent by the peer task.
    rejects: Vec<Wanted>,
    /// Requests refused since the last unchoke (choked, or a piece we lack): past
    /// [`MAX_QUEUE_HARD`] the peer is flooding us and is dropped (BEP 6 allows it), so rejects never
    /// pile up without bound.
    refused: u32,
}

impl Default for Uploads {
    fn default() -> Uploads {
        Uploads {
            queue: VecDeque::new(),
            dropped: 0,
            choking: true,
            fast: false,
            granted: Vec::new(),
            starting: true,
            rejects: Vec::new(),
            refused: 0,
        }
    }
}

impl Uploads {
    /// The peer speaks BEP 6, and we granted it `granted` as its allowed-fast set.
    pub fn fast(&mut self, granted: Vec<u32>) {
        self.fast = true;
        self.granted = granted;
    }

    /// Whether the peer still counts as starting (see [`crate::wire::fast::starting`]).
    pub fn set_starting(&mut self, starting: bool) {
        self.starting = starting;
    }

    /// Whether the peer still counts as starting.
    pub fn starting(&self) -> bool {
        self.starting
    }

    /// Whether a request for `index` may be served while we choke the peer.
    fn allowed_fast(&self, index: u32) -> bool {
        self.fast && self.starting && self.granted.contains(&index)
    }

    /// Rejects owed to the peer since the last call, to send now.
    pub fn take_rejects(&mut self) -> Vec<Wanted> {
        std::mem::take(&mut self.rejects)
    }

    /// A `request` arrived. Requests while we choke are discarded (`Ok`), and so are those past
    /// [`MAX_QUEUE_HARD`] (the peer asks again after its timeout, as with libtorrent). With BEP 6
    /// both are rejected instead, as is a piece we do not have, and an allowed-fast piece of a
    /// starting peer is served while choked.
    pub fn request(
        &mut self,
        lengths: &Lengths,
        ours: &Bitfield,
        index: u32,
        begin: u32,
        length: u32,
    ) -> Result<(), Refusal> {
        let piece = lengths.piece(index).ok_or(Refusal::OutOfRange)?;
        if length == 0 || length > BLOCK_LEN {
            return Err(Refusal::BadLength);
        }
        if u64::from(begin) + u64::from(length) > u64::from(lengths.piece_len(piece)) {
            return Err(Refusal::OutOfRange);
        }
        let wanted = Wanted {
            piece,
            begin,
            length,
        };
        if !ours.get(index) {
            if !self.fast {
                return Err(Refusal::NotHave);
            }
            return self.reject(wanted);
        }
        if self.choking && !self.allowed_fast(index) {
            // Requests sent before our choke reached the peer: normal, dropped (BEP 3) or rejected
            // (BEP 6); only a flood of them costs the connection.
            if self.fast {
                return self.reject(wanted);
            }
            return Ok(());
        }
        if self.queue.len() >= MAX_QUEUE_HARD {
            self.dropped += 1;
            if self.dropped > MAX_DROPPED {
                return Err(Refusal::Flood);
            }
            if self.fast {
                self.rejects.push(wanted);
            }
            return Ok(());
        }
        self.queue.push_back(wanted);
        Ok(())
    }

    /// Rejects `wanted`, within the budget of refusals since the last unchoke.
    fn reject(&mut self, wanted: Wanted) -> Result<(), Refusal> {
        self.refused += 1;
        if self.refused > MAX_QUEUE_HARD as u32 {
            return Err(Refusal::Flood);
        }
        self.rejects.push(wanted);
        Ok(())
    }

    /// A `cancel` arrived: forget that request if still queued (with BEP 6, reject it, as
    /// libtorrent does, so the peer knows it is settled).
    pub fn cancel(&mut self, index: u32, begin: u32, length: u32) {
        let found = self
            .queue
            .iter()
            .position(|w| w.piece.get() == index && w.begin == begin && w.length == length);
        if let Some(w) = found.and_then(|k| self.queue.remove(k)) {
            if self.fast {
                self.rejects.push(w);
            }
        }
    }

    /// We choke the peer: its queue is dropped; with BEP 6 each request is rejected, except
    /// allowed-fast ones, which are still served.
    pub fn choke(&mut self) {
        self.choking = true;
        if !self.fast {
            self.queue.clear();
            return;
        }
        let queue = std::mem::take(&mut self.queue);
        for w in queue {
            if self.allowed_fast(w.piece.get()) {
                self.queue.push_back(w);
            } else {
                self.rejects.push(w);
            }
        }
    }

    /// We unchoke the peer.
    pub fn unchoke(&mut self) {
        self.choking = false;
        self.refused = 0;
    }

    /// The next block to send.
    pub fn pop(&mut self) -> Option<Wanted> {
        self.queue.pop_front()
    }

    /// Requests dropped because the queue was full, over the connection's life.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// Whether anything is waiting to be sent.
    pub fn pending(&self) -> bool {
        !self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Lengths, Bitfield) {
        let lengths = Lengths::new(3 * 32768 + 100, 32768).unwrap();
        let mut ours = Bitfield::new(4);
        ours.set(0);
        ours.set(3);
        (lengths, ours)
    }

    #[test]
    fn accepts_good_requests_in_order_and_honours_cancel() {
        let (l, ours) = setup();
        let mut u = Uploads::default();
        u.unchoke();
        assert_eq!(u.request(&l, &ours, 0, 0, 16384), Ok(()));
        assert_eq!(u.request(&l, &ours, 0, 16384, 16384), Ok(()));
        assert_eq!(
            u.request(&l, &ours, 3, 0, 100),
            Ok(()),
            "the short last piece"
        );
        assert_eq!(
            u.request(&l, &ours, 0, 100, 1000),
            Ok(()),
            "unaligned is allowed"
        );
        u.cancel(0, 16384, 16384);
        assert_eq!(u.pop().map(|w| (w.piece.get(), w.begin)), Some((0, 0)));
        assert_eq!(u.pop().map(|w| (w.piece.get(), w.begin)), Some((3, 0)));
        assert_eq!(u.pop().map(|w| (w.piece.get(), w.begin)), Some((0, 100)));
        assert_eq!(u.pop(), None);
    }

    #[test]
    fn refuses_what_a_hostile_peer_asks() {
        let (l, ours) = setup();
        let mut u = Uploads::default();
        u.unchoke();
        assert_eq!(u.request(&l, &ours, 4, 0, 16384), Err(Refusal::OutOfRange));
        assert_eq!(u.request(&l, &ours, 3, 0, 101), Err(Refusal::OutOfRange));
        assert_eq!(u.request(&l, &ours, 0, 32768, 1), Err(Refusal::OutOfRange));
        assert_eq!(
            u.request(&l, &ours, 0, u32::MAX, 16384),
            Err(Refusal::OutOfRange)
        );
        assert_eq!(u.request(&l, &ours, 0, 0, 16385), Err(Refusal::BadLength));
        assert_eq!(u.request(&l, &ours, 0, 0, 0), Err(Refusal::BadLength));
        assert_eq!(u.request(&l, &ours, 1, 0, 16384), Err(Refusal::NotHave));
    }

    #[test]
    fn requests_past_the_queue_are_dropped_and_only_a_flood_costs_the_connection() {
        let (l, ours) = setup();
        let mut u = Uploads::default();
        u.unchoke();
        for _ in 0..MAX_QUEUE_HARD {
            assert_eq!(u.request(&l, &ours, 0, 0, 16384), Ok(()));
        }
        // Past the hard bound: dropped, the peer kept, until a flood's worth, even while we send.
        for k in 0..MAX_DROPPED {
            assert_eq!(u.request(&l, &ours, 0, 0, 16384), Ok(()));
            if k % 2 == 0 {
                assert!(u.pop().is_some());
                assert_eq!(u.request(&l, &ours, 0, 0, 16384), Ok(()));
            }
        }
        assert_eq!(u.queue.len(), MAX_QUEUE_HARD);
        assert_eq!(u.dropped(), MAX_DROPPED);
        assert_eq!(u.request(&l, &ours, 0, 0, 16384), Err(Refusal::Flood));
    }

    #[test]
    fn a_client_far_ahead_of_our_replies_is_served_and_loses_nothing() {
        // rtorrent 0.9.8 keeps 2048 requests outstanding and sends them ahead of our replies:
        // whatever it keeps outstanding up to the hard bound is queued, never dropped.
        let (l, ours) = setup();
        for depth in [MAX_QUEUED + 48, 2048, MAX_QUEUE_HARD] {
            let mut u = Uploads::default();
            u.unchoke();
            let mut served = 0;
            for _ in 0..10 * MAX_QUEUED {
                assert_eq!(u.request(&l, &ours, 0, 0, 16384), Ok(()));
                if u.queue.len() >= depth {
                    assert!(u.pop().is_some());
                    served += 1;
                }
            }
            while u.pop().is_some() {
                served += 1;
            }
            assert_eq!(served, 10 * MAX_QUEUED, "depth {depth}");
            assert_eq!(u.dropped(), 0, "depth {depth}");
        }
    }

    #[test]
    fn choked_requests_are_discarded_and_choking_clears_the_queue() {
        let (l, ours) = setup();
        let mut u = Uploads::default();
        assert_eq!(u.request(&l, &ours, 0, 0, 16384), Ok(()));
        assert!(!u.pending());
        u.unchoke();
        u.request(&l, &ours, 0, 0, 16384).unwrap();
        assert!(u.pending());
        u.choke();
        assert!(!u.pending());
        assert_eq!(u.pop(), None);
    }

    fn rejected(u: &mut Uploads) -> Vec<(u32, u32)> {
        u.take_rejects()
            .iter()
            .map(|w| (w.piece.get(), w.begin))
            .collect()
    }

    #[test]
    fn with_bep_6_what_we_will_not_serve_is_rejected_never_silently_dropped() {
        let (l, ours) = setup();
        let mut u = Uploads::default();
        u.fast(vec![]);
        // Choked: rejected, the peer kept.
        assert_eq!(u.request(&l, &ours, 0, 0, 16384), Ok(()));
        assert_eq!(rejected(&mut u), [(0, 0)]);
        assert!(!u.pending());
        // A piece we do not have: rejected (a plain peer is dropped for it, see above).
        u.unchoke();
        assert_eq!(u.request(&l, &ours, 1, 0, 16384), Ok(()));
        assert_eq!(rejected(&mut u), [(1, 0)]);
        // Queued, then cancelled: the cancel is answered with a reject; an unknown cancel is not.
        u.request(&l, &ours, 0, 0, 16384).unwrap();
        u.request(&l, &ours, 0, 16384, 16384).unwrap();
        u.cancel(0, 16384, 16384);
        u.cancel(3, 0, 100);
        assert_eq!(rejected(&mut u), [(0, 16384)]);
        // Choking rejects what is queued.
        u.request(&l, &ours, 3, 0, 100).unwrap();
        u.choke();
        assert_eq!(rejected(&mut u), [(0, 0), (3, 0)]);
        assert_eq!(u.pop(), None);
        // Past the hard bound: rejected.
        u.unchoke();
        for _ in 0..MAX_QUEUE_HARD {
            u.request(&l, &ours, 0, 0, 16384).unwrap();
        }
        assert!(rejected(&mut u).is_empty());
        u.request(&l, &ours, 3, 0, 100).unwrap();
        assert_eq!(rejected(&mut u), [(3, 0)]);
        // Requests while choked, past a flood's worth since the last unchoke, drop the peer.
        u.choke();
        let _ = rejected(&mut u);
        for _ in 0..MAX_QUEUE_HARD {
            assert_eq!(u.request(&l, &ours, 0, 0, 16384), Ok(()));
        }
        assert_eq!(u.request(&l, &ours, 0, 0, 16384), Err(Refusal::Flood));
        u.unchoke();
        u.choke();
        assert_eq!(u.request(&l, &ours, 0, 0, 16384), Ok(()), "a fresh budget");
        // Malformed requests still drop the peer.
        assert_eq!(u.request(&l, &ours, 4, 0, 16384), Err(Refusal::OutOfRange));
        assert_eq!(u.request(&l, &ours, 0, 0, 0), Err(Refusal::BadLength));
    }

    #[test]
    fn allowed_fast_pieces_are_served_while_choked_to_a_starting_peer_only() {
        let (l, ours) = setup();
        let mut u = Uploads::default();
        u.fast(vec![3, 1]);
        // Granted and held: served while choked. Granted but not held: rejected.
        u.request(&l, &ours, 3, 0, 100).unwrap();
        u.request(&l, &ours, 1, 0, 16384).unwrap();
        u.request(&l, &ours, 0, 0, 16384).unwrap();
        assert_eq!(rejected(&mut u), [(1, 0), (0, 0)]);
        assert!(u.pending());
        // Unchoked then choked: the allowed-fast request stays queued, the other is rejected.
        u.unchoke();
        u.request(&l, &ours, 0, 16384, 16384).unwrap();
        u.choke();
        assert_eq!(rejected(&mut u), [(0, 16384)]);
        assert_eq!(u.pop().map(|w| (w.piece.get(), w.begin)), Some((3, 0)));
        // No longer starting (more than k pieces): allowed-fast requests are rejected too.
        u.set_starting(false);
        u.request(&l, &ours, 3, 0, 100).unwrap();
        assert_eq!(rejected(&mut u), [(3, 0)]);
        // A plain peer (no BEP 6) gets no allowed-fast service and no rejects.
        let mut plain = Uploads::default();
        plain.request(&l, &ours, 3, 0, 100).unwrap();
        assert!(!plain.pending() && plain.take_rejects().is_empty());
    }
}
