//! How many requests to keep in flight to one peer: never below the baseline of 10, growing with the
//! peer's measured rate × round-trip time (the bandwidth-delay product) up to a cap. The time used is
//! twice the smallest round trip seen, but at least half a second of data, so the window keeps
//! growing while the peer keeps up (like libtorrent's request queue time) and reaches a long fat
//! link's BDP within a few samples. It also times the peer's service: a smoothed request→block
//! latency and its deviation (as TCP times its segments), from which comes how long the peer may
//! send nothing before it counts as stalled. Pure: the caller passes the clock.

use std::time::{Duration, Instant};

use crate::types::BLOCK_LEN;

/// The project's baseline pipeline: 10 × 16 KiB outstanding per unchoked peer, and the floor.
pub const BASELINE_REQUESTS: usize = 10;
/// Most requests in flight to a peer that did not tell us its queue depth (BEP 10 `reqq`): within
/// what libtorrent (2000) and Transmission (512) accept; 500 × 16 KiB sustains 160 MB/s at 50 ms.
pub const MAX_REQUESTS: usize = 500;
/// Most requests in flight to a peer that announced a deeper queue: 1000 × 16 KiB sustains 320 MB/s at
/// a 50 ms round trip, and bounds what one peer can hold reserved.
pub const MAX_REQUESTS_ANNOUNCED: usize = 1000;
/// Rate samples are taken over at least this long.
const RATE_PERIOD: Duration = Duration::from_millis(250);
/// The window holds at least this much time's worth of the peer's rate.
const MIN_QUEUE_TIME: Duration = Duration::from_millis(500);
/// The minimum round-trip time is forgotten after this long (routes and queues change).
const RTT_MEMORY: Duration = Duration::from_secs(10);
/// Stall threshold before the peer has sent a block: a round trip plus one block covers a peer at
/// 6 KB/s on a 300 ms link; slower still is worth asking elsewhere too.
pub const FIRST_BLOCK_TIMEOUT: Duration = Duration::from_secs(3);
/// The stall threshold never goes below this: a healthy peer's disk or rate limiter may pause a
/// moment, and releasing blocks costs duplicate traffic.
pub const MIN_STALL: Duration = Duration::from_secs(2);
/// Nor above this: the fixed timeout the project used before it measured (libtorrent snubs a peer
/// after 20 s too).
pub const MAX_STALL: Duration = Duration::from_secs(20);

/// The request window of one peer.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pinned: Option<usize>,
    /// Upper bound: [`MAX_REQUESTS`], or what the peer announced.
    cap: usize,
    target: usize,
    /// Smallest request→block delay seen lately: the round trip without queueing.
    min_rtt: Option<Duration>,
    min_rtt_at: Option<Instant>,
    /// Smoothed bytes per second.
    rate: f64,
    period_start: Option<Instant>,
    period_bytes: u64,
    /// Smoothed request→block latency and its mean deviation (RFC 6298's SRTT and RTTVAR).
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl Pipeline {
    /// A window that adapts, or one pinned at `pinned` requests (`--requests-per-peer`).
    pub fn new(pinned: Option<usize>) -> Pipeline {
        let pinned = pinned.map(|n| n.max(1));
        Pipeline {
            pinned,
            cap: MAX_REQUESTS,
            target: pinned.unwrap_or(BASELINE_REQUESTS),
            min_rtt: None,
            min_rtt_at: None,
            rate: 0.0,
            period_start: None,
            period_bytes: 0,
            srtt: None,
            rttvar: Duration::ZERO,
        }
    }

    /// How long the peer may send nothing, with requests in flight, before it counts as stalled: its
    /// smoothed latency plus four deviations (a whole queue served, with room for jitter), within
    /// [`MIN_STALL`]..[`MAX_STALL`]; [`FIRST_BLOCK_TIMEOUT`] until it has sent a block.
    pub fn stall_after(&self) -> Duration {
        match self.srtt {
            None => FIRST_BLOCK_TIMEOUT,
            Some(srtt) => (srtt + 4 * self.rttvar).clamp(MIN_STALL, MAX_STALL),
        }
    }

    /// The smoothed request→block latency, once measured.
    pub fn latency(&self) -> Option<Duration> {
        self.srtt
    }

    /// Requests to keep outstanding now.
    pub fn target(&self) -> usize {
        self.target
    }

    /// The peer announced how many requests it queues (BEP 10 `reqq`): the cap becomes that, at most
    /// [`MAX_REQUESTS_ANNOUNCED`].
    pub fn set_peer_limit(&mut self, reqq: u32) {
        self.cap = (reqq as usize).clamp(1, MAX_REQUESTS_ANNOUNCED);
        self.target = self.target.min(self.cap);
        if let Some(p) = self.pinned {
            self.target = p.min(self.cap);
        }
    }

    /// Smoothed download rate from this peer, bytes per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// A requested block of `bytes` arrived at `now`, `latency` after its request went out.
    pub fn on_block(&mut self, now: Instant, latency: Duration, bytes: u32) {
        let stale = self
            .min_rtt_at
            .is_none_or(|at| now.saturating_duration_since(at) > RTT_MEMORY);
        if stale || self.min_rtt.is_none_or(|m| latency < m) {
            self.min_rtt = Some(latency);
            self.min_rtt_at = Some(now);
        }
        self.time_service(latency);
        let start = *self.period_start.get_or_insert(now);
        self.period_bytes += u64::from(bytes);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_PERIOD {
            let sample = self.period_bytes as f64 / elapsed.as_secs_f64();
            self.rate = if self.rate == 0.0 {
                sample
            } else {
                0.5 * self.rate + 0.5 * sample
            };
            self.period_start = Some(now);
            self.period_bytes = 0;
            self.retarget();
        }
    }

    /// RFC 6298's estimator: SRTT += (sample − SRTT)/8, RTTVAR += (|SRTT − sample| − RTTVAR)/4.
    fn time_service(&mut self, sample: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(sample);
                self.rttvar = sample / 2;
            }
            Some(srtt) => {
                let err = srtt.abs_diff(sample);
                self.rttvar = (self.rttvar * 3 + err) / 4;
                self.srtt = Some((srtt * 7 + sample) / 8);
            }
        }
    }

    /// The peer stopped sending (choke, stall): start measuring afresh.
    pub fn reset_rate(&mut self) {
        self.period_start = None;
        self.period_bytes = 0;
    }

    fn retarget(&mut self) {
        if self.pinned.is_some() {
            return;
        }
        let rtt = self.min_rtt.unwrap_or_default();
        let time = (2 * rtt).max(MIN_QUEUE_TIME).as_secs_f64();
        let blocks = self.rate * time / f64::from(BLOCK_LEN);
        self.target = (blocks.ceil() as usize)
            .clamp(BASELINE_REQUESTS, self.cap.max(BASELINE_REQUESTS))
            .min(self.cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates a peer on a link of `rtt` and `capacity` bytes/s for `secs` seconds, the window
    /// limiting the rate as it would: rate = min(capacity, window × block / rtt).
    fn simulate(p: &mut Pipeline, rtt: Duration, capacity: f64, secs: u32) {
        let t0 = Instant::now();
        let step = Duration::from_millis(10);
        let mut owed = 0.0;
        for k in 0..(secs * 100) {
            let now = t0 + step * k;
            let rate = capacity.min(p.target() as f64 * f64::from(BLOCK_LEN) / rtt.as_secs_f64());
            owed += rate * step.as_secs_f64() / f64::from(BLOCK_LEN);
            while owed >= 1.0 {
                owed -= 1.0;
                p.on_block(now, rtt, BLOCK_LEN);
            }
        }
    }

    #[test]
    fn starts_at_the_baseline() {
        assert_eq!(Pipeline::new(None).target(), BASELINE_REQUESTS);
    }

    #[test]
    fn grows_to_fill_a_long_fat_link() {
        // 50 ms round trip, 40 MB/s: the fixed 10-block window would give 3.3 MB/s.
        let mut p = Pipeline::new(None);
        simulate(&mut p, Duration::from_millis(50), 40e6, 10);
        let bdp = 40e6 * 0.05 / f64::from(BLOCK_LEN);
        assert!(
            p.target() as f64 >= bdp,
            "target {} < BDP {bdp}",
            p.target()
        );
        assert!(p.target() <= MAX_REQUESTS);
        assert!(p.rate() > 35e6, "rate {}", p.rate());
    }

    #[test]
    fn is_capped_on_a_huge_link() {
        let mut p = Pipeline::new(None);
        simulate(&mut p, Duration::from_millis(200), 1e9, 20);
        assert_eq!(p.target(), MAX_REQUESTS);
    }

    #[test]
    fn stays_at_the_floor_on_a_slow_link() {
        let mut p = Pipeline::new(None);
        simulate(&mut p, Duration::from_millis(1), 1e5, 5);
        assert_eq!(p.target(), BASELINE_REQUESTS);
        let mut p = Pipeline::new(None);
        simulate(&mut p, Duration::from_millis(100), 1e5, 5);
        assert_eq!(p.target(), BASELINE_REQUESTS);
    }

    #[test]
    fn ramps_up_within_a_second() {
        // 50 ms, 150 MB/s: the BDP is ~460 blocks; the window must be near it after one second.
        let mut p = Pipeline::new(None);
        simulate(&mut p, Duration::from_millis(50), 150e6, 1);
        assert!(p.target() >= 400, "target {}", p.target());
    }

    #[test]
    fn a_peer_announced_queue_moves_the_cap() {
        let mut p = Pipeline::new(None);
        p.set_peer_limit(2000);
        simulate(&mut p, Duration::from_millis(200), 1e9, 20);
        assert_eq!(p.target(), MAX_REQUESTS_ANNOUNCED);
        let mut p = Pipeline::new(None);
        p.set_peer_limit(4);
        assert_eq!(
            p.target(),
            4,
            "a peer that queues 4 gets 4, below the baseline"
        );
        simulate(&mut p, Duration::from_millis(50), 40e6, 3);
        assert_eq!(p.target(), 4);
    }

    #[test]
    fn pinned_never_moves() {
        let mut p = Pipeline::new(Some(4));
        simulate(&mut p, Duration::from_millis(50), 40e6, 5);
        assert_eq!(p.target(), 4);
        assert_eq!(Pipeline::new(Some(0)).target(), 1);
    }

    #[test]
    fn the_stall_threshold_follows_the_measured_service_time() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(None);
        assert_eq!(p.stall_after(), FIRST_BLOCK_TIMEOUT);
        // A fast, steady peer: 50 ms latencies; the floor applies.
        for k in 0..50u32 {
            p.on_block(
                t0 + Duration::from_millis(u64::from(k)),
                Duration::from_millis(50),
                BLOCK_LEN,
            );
        }
        assert_eq!(p.stall_after(), MIN_STALL);
        assert!(p.latency().unwrap() < Duration::from_millis(60));
        // A slow peer serving a deep queue: 6 s latencies → about 6 s plus its jitter.
        let mut p = Pipeline::new(None);
        for k in 0..50u32 {
            let lat = Duration::from_millis(5_500 + u64::from(k % 3) * 500);
            p.on_block(
                t0 + Duration::from_millis(u64::from(k) * 100),
                lat,
                BLOCK_LEN,
            );
        }
        let s = p.stall_after();
        assert!(
            s > Duration::from_secs(6) && s < Duration::from_secs(9),
            "{s:?}"
        );
        // A crawling one is capped.
        let mut p = Pipeline::new(None);
        p.on_block(t0, Duration::from_secs(60), BLOCK_LEN);
        assert_eq!(p.stall_after(), MAX_STALL);
        // The estimate moves when the service does.
        let mut p = Pipeline::new(None);
        for k in 0..20u32 {
            p.on_block(
                t0 + Duration::from_millis(u64::from(k)),
                Duration::from_secs(4),
                BLOCK_LEN,
            );
        }
        let slow = p.stall_after();
        for k in 0..40u32 {
            p.on_block(
                t0 + Duration::from_millis(u64::from(k)),
                Duration::from_millis(300),
                BLOCK_LEN,
            );
        }
        assert!(
            p.stall_after() < slow / 2,
            "{:?} then {:?}",
            slow,
            p.stall_after()
        );
    }

    #[test]
    fn queueing_delay_does_not_inflate_the_window() {
        // Latencies grow with the queue, but the minimum stays the true round trip.
        let mut p = Pipeline::new(None);
        let t0 = Instant::now();
        for k in 0..400u32 {
            let lat = Duration::from_millis(10 + u64::from(k % 50) * 10);
            p.on_block(t0 + Duration::from_millis(u64::from(k) * 5), lat, BLOCK_LEN);
        }
        // ~3.2 MB/s for half a second is ~100 blocks; queueing latencies up to 500 ms would have
        // meant ~400 had the mean been used.
        assert!(p.target() <= 110, "target {}", p.target());
    }
}
