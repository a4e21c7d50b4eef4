//! How a mirror is doing: failures back it off exponentially; bad data (wrong bytes, a 4xx, a server
//! that ignores `Range`, a short body) counts a strike, and [`MAX_STRIKES`] of them, or
//! [`MAX_CONSECUTIVE`] failures in a row, drop it for the session. Pure: the caller passes the time.

use std::time::{Duration, Instant};

/// Bad answers after which a mirror is dropped for the session.
pub const MAX_STRIKES: u32 = 3;
/// Failures in a row (of any kind, e.g. timeouts) after which a mirror is dropped: with the backoff
/// below that is about eight minutes of a mirror that never answers.
pub const MAX_CONSECUTIVE: u32 = 10;
/// First backoff; it doubles with each failure in a row.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest backoff.
pub const BACKOFF_MAX: Duration = Duration::from_secs(120);

/// What went wrong with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Might work next time: a timeout, a refused connection, a 5xx, a reset mid-body.
    Transient,
    /// The mirror answered wrongly: it counts a strike.
    Bad,
}

/// One mirror's record.
#[derive(Debug, Clone, Default)]
pub struct Health {
    consecutive: u32,
    strikes: u32,
    until: Option<Instant>,
    dropped: Option<String>,
    last_error: Option<String>,
}

impl Health {
    /// Why the mirror was dropped, if it was.
    pub fn dropped(&self) -> Option<&str> {
        self.dropped.as_deref()
    }

    /// The last failure, for logs and the "nothing works" message.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// How long to wait before the next request (`Duration::ZERO`: now); `None` once dropped.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        if self.dropped.is_some() {
            return None;
        }
        Some(
            self.until
                .map_or(Duration::ZERO, |u| u.saturating_duration_since(now)),
        )
    }

    /// A request delivered what it should: the backoff resets (strikes stay).
    pub fn success(&mut self) {
        self.consecutive = 0;
        self.until = None;
    }

    /// Takes a strike without a request failing (a piece it alone sent failed its hash check).
    pub fn strike(&mut self, why: &str, now: Instant) -> bool {
        self.failure(Failure::Bad, why, now)
    }

    /// A request failed: back off, and drop the mirror when it has had enough; `true` if dropped now.
    pub fn failure(&mut self, kind: Failure, why: &str, now: Instant) -> bool {
        if self.dropped.is_some() {
            return false;
        }
        self.last_error = Some(why.to_string());
        self.consecutive += 1;
        if kind == Failure::Bad {
            self.strikes += 1;
        }
        if self.strikes >= MAX_STRIKES {
            self.dropped = Some(format!("{} bad answers, last: {why}", self.strikes));
            return true;
        }
        if self.consecutive >= MAX_CONSECUTIVE {
            self.dropped = Some(format!(
                "{} failures in a row, last: {why}",
                self.consecutive
            ));
            return true;
        }
        let shift = (self.consecutive - 1).min(16);
        let backoff = BACKOFF_START.saturating_mul(1 << shift).min(BACKOFF_MAX);
        self.until = Some(now + backoff);
        false
    }

    /// Drops the mirror at once (an unusable URL).
    pub fn drop_now(&mut self, why: String) {
        self.last_error = Some(why.clone());
        self.dropped = Some(why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped_and_success_resets_it() {
        let now = Instant::now();
        let mut h = Health::default();
        assert_eq!(h.wait(now), Some(Duration::ZERO));
        let mut waits = Vec::new();
        for _ in 0..9 {
            assert!(!h.failure(Failure::Transient, "timed out", now));
            waits.push(h.wait(now).unwrap().as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 120, 120]);
        assert_eq!(h.wait(now + Duration::from_secs(200)), Some(Duration::ZERO));
        h.success();
        assert_eq!(h.wait(now), Some(Duration::ZERO));
        h.failure(Failure::Transient, "timed out", now);
        assert_eq!(
            h.wait(now),
            Some(Duration::from_secs(1)),
            "back to the start"
        );
        assert_eq!(h.last_error(), Some("timed out"));
    }

    #[test]
    fn three_strikes_drop_a_mirror_even_between_successes() {
        let now = Instant::now();
        let mut h = Health::default();
        assert!(!h.failure(Failure::Bad, "404 Not Found", now));
        h.success();
        assert!(!h.strike("a piece failed its hash check", now));
        h.success();
        assert!(h.failure(Failure::Bad, "200 without Range", now));
        assert_eq!(h.wait(now), None);
        assert!(h.dropped().unwrap().contains("3 bad answers"));
        assert!(!h.failure(Failure::Bad, "again", now), "dropped only once");
    }

    #[test]
    fn endless_transient_failures_drop_a_mirror() {
        let now = Instant::now();
        let mut h = Health::default();
        let dropped = (0..MAX_CONSECUTIVE)
            .map(|_| h.failure(Failure::Transient, "connection refused", now))
            .collect::<Vec<_>>();
        assert_eq!(dropped.iter().filter(|d| **d).count(), 1);
        assert!(dropped[MAX_CONSECUTIVE as usize - 1]);
        assert!(h.dropped().unwrap().contains("in a row"));
    }

    #[test]
    fn an_unusable_url_is_dropped_at_once() {
        let mut h = Health::default();
        h.drop_now("only http and https web seeds are supported".into());
        assert_eq!(h.wait(Instant::now()), None);
    }
}
