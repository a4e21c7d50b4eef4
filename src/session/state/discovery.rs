//! Discovery: the pool of addresses to dial (with where each came from) and how the trackers are
//! doing, for the "nothing to download from" check and the summary.

use std::net::SocketAddr;

use crate::session::pool::{PeerSource, Pool};

/// What the announcers report.
#[derive(Debug, Default)]
pub struct TrackerStatus {
    tiers: usize,
    tiers_tried: usize,
    answered: usize,
    last_error: Option<String>,
    /// Each tracker's last error, by URL, in the order they first failed.
    errors: Vec<(String, String)>,
}

impl TrackerStatus {
    /// Tiers announced to.
    pub fn tiers(&self) -> usize {
        self.tiers
    }

    /// Every tier finished its first round of attempts and none ever answered.
    pub fn all_failed(&self) -> bool {
        self.tiers_tried >= self.tiers && self.answered == 0
    }

    /// The last tracker error, for the message.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Whether any tracker (or the DHT) ever answered.
    pub fn answered(&self) -> bool {
        self.answered > 0
    }

    /// Each tracker that failed, with its last error (one entry per URL).
    pub fn errors(&self) -> &[(String, String)] {
        &self.errors
    }
}

#[derive(Default)]
pub(super) struct Discovery {
    pub(super) pool: Pool,
    pub(super) trackers: TrackerStatus,
}

impl Discovery {
    pub(super) fn set_tiers(&mut self, n: usize) {
        self.trackers.tiers = n;
    }

    pub(super) fn answered(
        &mut self,
        peers: &[SocketAddr],
        v2: bool,
        now: std::time::Instant,
    ) -> usize {
        self.trackers.answered += 1;
        self.pool.add_in(peers, PeerSource::Tracker, v2, now)
    }

    pub(super) fn failed(&mut self, url: &str, why: String) {
        let url = crate::text::line(url);
        self.trackers.last_error = Some(format!("{url}: {why}"));
        let errors = &mut self.trackers.errors;
        match errors.iter_mut().find(|(u, _)| *u == url) {
            Some(e) => e.1 = why,
            None => errors.push((url, why)),
        }
    }

    pub(super) fn tier_tried(&mut self) {
        self.trackers.tiers_tried += 1;
    }

    /// A DHT lookup came back with `peers`. The DHT counts as one more tier: its first lookup is
    /// that tier's first round, and it "answered" only if it found peers.
    /// `v2`: the lookup was for a hybrid's truncated v2 id, whose peers are dialled with it.
    pub(super) fn dht_result(
        &mut self,
        peers: &[SocketAddr],
        first: bool,
        v2: bool,
        now: std::time::Instant,
    ) -> usize {
        if first {
            self.trackers.tiers_tried += 1;
        }
        if peers.is_empty() {
            if self.trackers.answered == 0 {
                self.trackers.last_error = Some("the DHT found no peer".into());
            }
        } else {
            self.trackers.answered += 1;
        }
        self.pool.add_in(peers, PeerSource::Dht, v2, now)
    }
}
