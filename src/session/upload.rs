//! The serving side of one connection: which of a peer's `request`s we accept (in range, at most
//! 16 KiB, for a piece we have, within a bounded queue), `cancel`, choke state, and the upload rate the
//! choker reads. Pure: the peer task reads the blocks and writes them.

use std::collections::VecDeque;

use crate::bitfield::Bitfield;
use crate::types::{Lengths, PieceIndex, BLOCK_LEN};

/// Requests one peer may have queued with us: what we announce as `reqq` (BEP 10).
pub const MAX_QUEUED: usize = 250;
/// Requests past [`MAX_QUEUED`] still queued as long as we keep sending: clients overshoot (aria2 1.36
/// keeps up to 256 outstanding whatever `reqq` says, and never asks again for a request we drop).
/// More than this many past a full queue with no block sent in between is a flood.
pub const MAX_OVERFLOW: u32 = MAX_QUEUED as u32;
/// Absolute bound on one peer's queue (12 bytes an entry): libtorrent's own acceptance limit.
pub const MAX_QUEUE_HARD: usize = 2000;

/// Why a request drops the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Outside the torrent or the piece.
    OutOfRange,
    /// Zero or more than 16 KiB.
    BadLength,
    /// A piece we have not announced.
    NotHave,
    /// More than [`MAX_OVERFLOW`] requests past a full queue before we could send anything, or more
    /// than [`MAX_QUEUE_HARD`] queued.
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
    /// Requests taken past [`MAX_QUEUED`] since a block was last sent.
    overflow: u32,
    /// Whether we choke the peer (requests are then discarded, BEP 3).
    pub choking: bool,
}

impl Default for Uploads {
    fn default() -> Uploads {
        Uploads {
            queue: VecDeque::new(),
            overflow: 0,
            choking: true,
        }
    }
}

impl Uploads {
    /// A `request` arrived. Requests while we choke are discarded (`Ok`).
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
        if !ours.get(index) {
            return Err(Refusal::NotHave);
        }
        if self.choking {
            return Ok(());
        }
        if self.queue.len() >= MAX_QUEUED {
            self.overflow += 1;
            if self.overflow > MAX_OVERFLOW || self.queue.len() >= MAX_QUEUE_HARD {
                return Err(Refusal::Flood);
            }
        }
        self.queue.push_back(Wanted {
            piece,
            begin,
            length,
        });
        Ok(())
    }

    /// A `cancel` arrived: forget that request if still queued.
    pub fn cancel(&mut self, index: u32, begin: u32, length: u32) {
        self.queue
            .retain(|w| !(w.piece.get() == index && w.begin == begin && w.length == length));
    }

    /// We choke the peer: its queue is dropped.
    pub fn choke(&mut self) {
        self.choking = true;
        self.queue.clear();
    }

    /// We unchoke the peer.
    pub fn unchoke(&mut self) {
        self.choking = false;
    }

    /// The next block to send.
    pub fn pop(&mut self) -> Option<Wanted> {
        let w = self.queue.pop_front();
        if w.is_some() {
            self.overflow = 0;
        }
        w
    }

    /// Whether anything is waiting to be sent.
    pub fn pending(&self) -> bool {
        !self.choking && !self.queue.is_empty()
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
        for _ in 0..MAX_QUEUED {
            assert_eq!(u.request(&l, &ours, 0, 0, 16384), Ok(()));
        }
        // Past a full queue: still taken, and a flood only after a whole queue's worth more.
        for _ in 0..MAX_OVERFLOW {
            assert_eq!(u.request(&l, &ours, 0, 0, 16384), Ok(()));
        }
        assert_eq!(u.request(&l, &ours, 0, 0, 16384), Err(Refusal::Flood));
        assert_eq!(u.queue.len(), MAX_QUEUED + MAX_OVERFLOW as usize);
        // A client that overshoots a little while we serve is never dropped, nor any request lost.
        let mut u = Uploads::default();
        u.unchoke();
        let mut sent = 0;
        for _ in 0..10 * MAX_QUEUED {
            assert_eq!(u.request(&l, &ours, 0, 0, 16384), Ok(()));
            if u.queue.len() > MAX_QUEUED + 6 {
                assert!(u.pop().is_some());
                sent += 1;
            }
        }
        while u.pop().is_some() {
            sent += 1;
        }
        assert_eq!(sent, 10 * MAX_QUEUED);
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
}
