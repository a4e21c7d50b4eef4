//! Per-source token buckets for the UDP face: each source address (an IPv4 address, an IPv6 /64)
//! may send `rate` datagrams a second with bursts of `burst`. Pure (the caller passes the time).
//!
//! The table has a fixed number of slots, grouped in sets of [`WAYS`]; a source lives in the set its
//! keyed hash picks, so memory stays fixed however many (spoofed) sources send. A new source takes
//! a free slot of its set, else the slot whose bucket is fullest (a full bucket is what a forgotten
//! source starts with, so forgetting it loses the least), ties going to the least recently seen. A
//! newcomer is always admitted; under a flood of many sources the limit can only get looser for
//! some of them, never stricter for anyone.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::time::Instant;

/// Slots per set: a new source can displace only one of these.
pub const WAYS: usize = 4;
/// Slots in the table by default: 24 bytes each, 384 KiB. A source idle for `burst / rate` seconds
/// is as good as new, so the table only has to hold the sources seen within that window.
pub const DEFAULT_SLOTS: usize = 16_384;

/// A source's key: its IPv4 address (mapped), or its IPv6 /64 (one host usually has a whole /64).
fn key(ip: IpAddr) -> [u8; 16] {
    match ip.to_canonical() {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => {
            let mut o = v.octets();
            o[8..].fill(0);
            o
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: [u8; 16],
    /// Milliseconds since the limiter's epoch when last refilled; 0 = free.
    seen_ms: u64,
    tokens: f32,
}

const FREE: Slot = Slot {
    key: [0; 16],
    seen_ms: 0,
    tokens: 0.0,
};

/// The bucket table.
#[derive(Debug)]
pub struct SourceLimiter<H = RandomState> {
    slots: Vec<Slot>,
    hasher: H,
    /// Tokens per millisecond.
    per_ms: f32,
    burst: f32,
    epoch: Instant,
}

impl SourceLimiter<RandomState> {
    /// `rate` datagrams per second and bursts of `burst` per source, over `slots` slots (rounded up
    /// to whole sets), hashed with a per-process key so that nobody can aim sources at one set.
    pub fn new(rate: u32, burst: u32, slots: usize, epoch: Instant) -> Self {
        Self::with_hasher(rate, burst, slots, epoch, RandomState::new())
    }
}

impl<H: BuildHasher> SourceLimiter<H> {
    /// As [`SourceLimiter::new`] with a chosen hasher (tests).
    pub fn with_hasher(rate: u32, burst: u32, slots: usize, epoch: Instant, hasher: H) -> Self {
        let sets = slots.div_ceil(WAYS).max(1);
        SourceLimiter {
            slots: vec![FREE; sets * WAYS],
            hasher,
            per_ms: rate as f32 / 1000.0,
            burst: burst.max(1) as f32,
            epoch,
        }
    }

    /// Whether a datagram from `ip` at `now` is within its source's budget (and spends a token).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = key(ip);
        // +1: 0 marks a free slot.
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u64 + 1;
        let sets = self.slots.len() / WAYS;
        let set = (self.hasher.hash_one(key) % sets as u64) as usize * WAYS;
        let (per_ms, burst) = (self.per_ms, self.burst);
        let ways = &mut self.slots[set..set + WAYS];
        let refilled = |s: &Slot| {
            let dt = now_ms.saturating_sub(s.seen_ms) as f32;
            (s.tokens + dt * per_ms).min(burst)
        };
        let i = match ways.iter().position(|s| s.seen_ms != 0 && s.key == key) {
            Some(i) => i,
            None => {
                // Free first, then the fullest bucket (a full one is as good as forgotten), then
                // the least recently seen.
                let i = (0..WAYS)
                    .max_by(|&a, &b| {
                        let score = |s: &Slot| (s.seen_ms == 0, refilled(s), u64::MAX - s.seen_ms);
                        score(&ways[a])
                            .partial_cmp(&score(&ways[b]))
                            .unwrap_or(std::cmp::Ordering::Equal)
                    })
                    .unwrap_or(0);
                ways[i] = Slot {
                    key,
                    seen_ms: now_ms,
                    tokens: burst,
                };
                i
            }
        };
        let s = &mut ways[i];
        s.tokens = refilled(s);
        s.seen_ms = s.seen_ms.max(now_ms);
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Sources currently held (tests and metrics).
    pub fn held(&self) -> usize {
        self.slots.iter().filter(|s| s.seen_ms != 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasherDefault;
    use std::time::Duration;

    /// A fixed hasher: the same sets on every run.
    type Fixed = BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limiter(rate: u32, burst: u32, slots: usize) -> (SourceLimiter<Fixed>, Instant) {
        let t0 = Instant::now();
        (
            SourceLimiter::with_hasher(rate, burst, slots, t0, Fixed::default()),
            t0,
        )
    }

    fn allowed(l: &mut SourceLimiter<Fixed>, who: &str, n: usize, at: Instant) -> usize {
        (0..n).filter(|_| l.allow(ip(who), at)).count()
    }

    #[test]
    fn a_burst_then_the_rate() {
        let (mut l, t0) = limiter(10, 20, 64);
        assert_eq!(allowed(&mut l, "10.0.0.1", 100, t0), 20, "the burst");
        assert_eq!(allowed(&mut l, "10.0.0.1", 5, t0), 0);
        // 10 a second: one token per 100 ms.
        let t = t0 + Duration::from_millis(550);
        assert_eq!(allowed(&mut l, "10.0.0.1", 100, t), 5);
        // Refill stops at the burst.
        let t = t + Duration::from_secs(3600);
        assert_eq!(allowed(&mut l, "10.0.0.1", 100, t), 20);
    }

    #[test]
    fn one_flooder_does_not_touch_another_source() {
        let (mut l, t0) = limiter(10, 20, 1024);
        for ms in 0..2000 {
            let t = t0 + Duration::from_millis(ms);
            l.allow(ip("10.0.0.66"), t);
            l.allow(ip("10.0.0.66"), t);
        }
        let t = t0 + Duration::from_millis(2000);
        assert_eq!(
            allowed(&mut l, "10.0.0.66", 10, t),
            0,
            "the flooder is held"
        );
        assert_eq!(allowed(&mut l, "10.0.0.7", 20, t), 20, "the other is not");
    }

    #[test]
    fn keys_are_v4_addresses_and_v6_prefixes() {
        let (mut l, t0) = limiter(1, 2, 64);
        assert_eq!(allowed(&mut l, "2001:db8:1:2::1", 2, t0), 2);
        // Another address in the same /64 shares the bucket; another /64 does not.
        assert_eq!(allowed(&mut l, "2001:db8:1:2:ffff::9", 1, t0), 0);
        assert_eq!(allowed(&mut l, "2001:db8:1:3::1", 1, t0), 1);
        // A v4-mapped v6 address is its v4 address.
        assert_eq!(allowed(&mut l, "192.0.2.1", 2, t0), 2);
        assert_eq!(allowed(&mut l, "::ffff:192.0.2.1", 1, t0), 0);
    }

    #[test]
    fn memory_is_fixed_however_many_sources() {
        let (mut l, t0) = limiter(10, 20, 256);
        for i in 0..100_000u32 {
            l.allow(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert_eq!(l.slots.len(), 256);
        assert_eq!(l.held(), 256);
    }

    #[test]
    fn a_full_set_forgets_the_fullest_bucket_and_always_admits_a_newcomer() {
        // One set of WAYS slots: every source collides.
        let (mut l, t0) = limiter(10, 20, WAYS);
        let t1 = t0 + Duration::from_millis(10);
        // A flooder drains its bucket; three light sources spend one token each.
        assert_eq!(allowed(&mut l, "10.0.0.1", 30, t0), 20);
        for who in ["10.0.0.2", "10.0.0.3", "10.0.0.4"] {
            assert_eq!(allowed(&mut l, who, 1, t1), 1);
        }
        // A newcomer displaces a light source (forgetting it loses one token), not the flooder.
        assert_eq!(allowed(&mut l, "10.0.0.5", 1, t1), 1);
        assert_eq!(allowed(&mut l, "10.0.0.1", 1, t1), 0, "the flooder is kept");
        assert_eq!(l.held(), WAYS);
        // A set of drained flooders still admits a newcomer (the least recently seen goes).
        let (mut l, t0) = limiter(10, 20, WAYS);
        for (i, who) in ["10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4"]
            .iter()
            .enumerate()
        {
            let t = t0 + Duration::from_micros(i as u64 * 1500);
            assert_eq!(allowed(&mut l, who, 25, t), 20);
        }
        let t = t0 + Duration::from_millis(5);
        assert_eq!(allowed(&mut l, "10.0.2.1", 1, t), 1);
        assert_eq!(
            allowed(&mut l, "10.0.1.1", 1, t),
            1,
            "the oldest flooder was forgotten"
        );
        assert_eq!(allowed(&mut l, "10.0.1.4", 1, t), 0, "the newest was not");
    }

    #[test]
    fn time_going_backwards_does_not_mint_tokens() {
        let (mut l, t0) = limiter(10, 2, 64);
        let t = t0 + Duration::from_secs(5);
        assert_eq!(allowed(&mut l, "10.0.0.1", 5, t), 2);
        assert_eq!(allowed(&mut l, "10.0.0.1", 5, t0), 0);
        assert_eq!(allowed(&mut l, "10.0.0.1", 5, t), 0);
    }
}
