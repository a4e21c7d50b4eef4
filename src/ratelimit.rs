//! Rate limits (`--max-download-rate`, `--max-upload-rate`): one token bucket per direction, on
//! payload bytes, shared by every peer and web seed of the process. Pure: the caller passes the time.
//!
//! A transfer reserves its bytes before it starts (a request before it is sent, a block before it
//! is written), and the bucket may go into debt: the caller then waits [`TokenBucket::reserve`]'s
//! answer before the next one. So the long-run rate is the limit, the burst is at most a quarter of a
//! second's worth, and with no limit there is no bucket at all.

use std::time::{Duration, Instant};

/// Tokens saved up while idle, in seconds of the rate.
const BURST_SECS: f64 = 0.25;

/// One direction's bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket of `rate` bytes per second (more than 0), empty at `now`.
    pub fn new(rate: u64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate: rate.max(1) as f64,
            tokens: 0.0,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + dt * self.rate).min(self.rate * BURST_SECS);
    }

    /// Takes `bytes`; how long to wait before using them (zero when they were there).
    pub fn reserve(&mut self, bytes: u64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// How long until the bucket is out of debt (zero if it is not in debt).
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.reserve(0, now)
    }
}

/// Parses a rate: a number of bytes per second, with an optional `K`, `M` or `G` suffix (KiB, MiB,
/// GiB per second; `KB`, `MiB`, `k` and the like are accepted too). `0` means unlimited (`None`).
pub fn parse_rate(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a rate (e.g. 500K, 8M, 1G, 0 for none)"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("{text:?}: the unit must be K, M or G")),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes > 1e15 {
        return Err(format!("{text:?} is too large a rate"));
    }
    Ok((bytes >= 1.0).then_some(bytes as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_run_rate_is_the_limit() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1_000_000, t0);
        // A client that reserves 16 KiB and waits as told, for 10 simulated seconds.
        let mut now = t0;
        let mut sent = 0u64;
        while now < t0 + Duration::from_secs(10) {
            let wait = b.reserve(16384, now);
            now += wait;
            sent += 16384;
        }
        let rate = sent as f64 / now.duration_since(t0).as_secs_f64();
        assert!((rate - 1_000_000.0).abs() < 20_000.0, "{rate}");
    }

    #[test]
    fn idle_time_saves_at_most_a_quarter_second() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1_000_000, t0);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(b.reserve(250_000, later), Duration::ZERO, "the burst");
        let wait = b.reserve(500_000, later);
        assert_eq!(wait, Duration::from_millis(500), "then the rate");
        assert_eq!(b.wait(later + Duration::from_millis(500)), Duration::ZERO);
    }

    #[test]
    fn a_clock_going_backwards_is_harmless() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let mut b = TokenBucket::new(1000, t0);
        let wait = b.reserve(500, t0 - Duration::from_secs(1));
        assert_eq!(wait, Duration::from_millis(500));
    }

    #[test]
    fn rates_parse_as_binary_units_and_zero_is_none() {
        assert_eq!(parse_rate("8M"), Ok(Some(8 * 1024 * 1024)));
        assert_eq!(parse_rate("500K"), Ok(Some(500 * 1024)));
        assert_eq!(parse_rate("1G"), Ok(Some(1024 * 1024 * 1024)));
        assert_eq!(parse_rate("1.5MiB"), Ok(Some(3 * 512 * 1024)));
        assert_eq!(parse_rate("12345"), Ok(Some(12345)));
        assert_eq!(parse_rate("0"), Ok(None));
        assert_eq!(parse_rate("0M"), Ok(None));
        for bad in ["", "M", "8X", "-1", "8 M M", "1e99G", "abc"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }
}
