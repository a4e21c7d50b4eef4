//! The requests in flight to one peer, oldest first, each with when it went out and whether it was
//! released: handed back to the picker because the peer stalled, so another peer may fetch the
//! block, while the request stays open in case this peer still answers. Pure: the caller passes the
//! clock and tells the picker.

use std::time::{Duration, Instant};

use crate::types::BlockRef;

/// One request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    block: BlockRef,
    at: Instant,
    /// Given back to the picker (the peer stalled); no longer counted as this peer's reservation.
    released: bool,
}

/// What became of an arriving block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// We asked this peer for it, this long ago; `released` if it had been given back meanwhile.
    Asked { latency: Duration, released: bool },
    /// Not (or no longer) asked of this peer.
    Unasked,
}

/// The requests in flight to one peer.
#[derive(Debug, Default)]
pub struct Outstanding {
    list: Vec<Sent>,
}

impl Outstanding {
    /// Requests in flight, released ones included (they still occupy the peer's window).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Requests still reserved to this peer in the picker (not released).
    pub fn live(&self) -> impl Iterator<Item = BlockRef> + '_ {
        self.list.iter().filter(|s| !s.released).map(|s| s.block)
    }

    /// A request went out at `now`.
    pub fn push(&mut self, block: BlockRef, now: Instant) {
        self.list.push(Sent {
            block,
            at: now,
            released: false,
        });
    }

    /// `block` arrived at `now`.
    pub fn arrived(&mut self, block: BlockRef, now: Instant) -> Arrival {
        match self.list.iter().position(|s| s.block == block) {
            Some(k) => {
                let s = self.list.remove(k);
                Arrival::Asked {
                    latency: now.saturating_duration_since(s.at),
                    released: s.released,
                }
            }
            None => Arrival::Unasked,
        }
    }

    /// Another peer delivered `block` first (endgame): forget our request. `true` if it was ours, so
    /// a `cancel` is due.
    pub fn cancel(&mut self, block: BlockRef) -> bool {
        let before = self.list.len();
        self.list.retain(|s| s.block != block);
        self.list.len() != before
    }

    /// The peer rejected `block` (BEP 6): forget our request. `Some(live)` if it was ours, `live`
    /// when the picker still counts it as this peer's (so it must be given back).
    pub fn remove(&mut self, block: BlockRef) -> Option<bool> {
        let k = self.list.iter().position(|s| s.block == block)?;
        Some(!self.list.remove(k).released)
    }

    /// Forgets the released requests (a BEP 6 peer unchoked us again: it served or rejected what it
    /// meant to, the rest is void); they no longer hold the peer's window.
    pub fn drop_released(&mut self) {
        self.list.retain(|s| !s.released);
    }

    /// The peer stalled: every live request is marked released; returns them, for the picker to
    /// offer to other peers.
    pub fn release(&mut self) -> Vec<BlockRef> {
        let mut out = Vec::new();
        for s in self.list.iter_mut().filter(|s| !s.released) {
            s.released = true;
            out.push(s.block);
        }
        out
    }

    /// Everything ends (choke, disconnect): clears the list; returns the live requests, for the
    /// picker to take back.
    pub fn clear(&mut self) -> Vec<BlockRef> {
        let live = self.live().collect();
        self.list.clear();
        live
    }

    /// Drops released requests for blocks no longer `wanted` (they arrived from elsewhere); returns
    /// them, for a `cancel` each.
    pub fn prune_released(&mut self, wanted: impl Fn(BlockRef) -> bool) -> Vec<BlockRef> {
        let mut gone = Vec::new();
        self.list.retain(|s| {
            let keep = !s.released || wanted(s.block);
            if !keep {
                gone.push(s.block);
            }
            keep
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Lengths, BLOCK_LEN};

    fn blocks(n: u32) -> Vec<BlockRef> {
        let l = Lengths::new(u64::from(n) * u64::from(BLOCK_LEN), BLOCK_LEN).unwrap();
        (0..n)
            .map(|i| l.block(l.piece(i).unwrap(), 0).unwrap())
            .collect()
    }

    #[test]
    fn arrivals_give_their_latency_and_forget_the_request() {
        let b = blocks(3);
        let t0 = Instant::now();
        let mut o = Outstanding::default();
        o.push(b[0], t0);
        o.push(b[1], t0 + Duration::from_millis(5));
        assert_eq!(o.len(), 2);
        assert_eq!(
            o.arrived(b[1], t0 + Duration::from_millis(45)),
            Arrival::Asked {
                latency: Duration::from_millis(40),
                released: false
            }
        );
        assert_eq!(o.arrived(b[1], t0), Arrival::Unasked, "only once");
        assert_eq!(o.arrived(b[2], t0), Arrival::Unasked);
        assert!(o.cancel(b[0]));
        assert!(!o.cancel(b[0]));
        assert!(o.is_empty());
    }

    #[test]
    fn a_stalled_peer_releases_its_blocks_but_keeps_the_requests_open() {
        let b = blocks(4);
        let t0 = Instant::now();
        let mut o = Outstanding::default();
        for x in &b[..3] {
            o.push(*x, t0);
        }
        assert_eq!(o.release(), b[..3].to_vec());
        assert!(o.release().is_empty(), "released once");
        assert_eq!(o.live().count(), 0);
        assert_eq!(o.len(), 3, "still in the peer's window");
        o.push(b[3], t0);
        assert_eq!(o.live().collect::<Vec<_>>(), vec![b[3]]);
        // A late answer to a released request is still an answer.
        assert!(matches!(
            o.arrived(b[0], t0 + Duration::from_secs(9)),
            Arrival::Asked { released: true, .. }
        ));
        // Released blocks that came from elsewhere are dropped (a cancel each); live ones stay.
        let gone = o.prune_released(|x| x != b[1]);
        assert_eq!(gone, vec![b[1]]);
        assert_eq!(o.len(), 2);
        // On a choke only the live requests go back to the picker.
        assert_eq!(o.clear(), vec![b[3]]);
        assert!(o.is_empty());
    }
}
