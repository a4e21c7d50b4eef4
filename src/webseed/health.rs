//! How a mirror is doing: failures back it off exponentially; a bad answer (a 4xx, a server that
//! ignores `Range`, a short body, a body that stalls, or a piece it sent wrong once another source
//! proved it) counts a strike. [`MAX_STRIKES`] strikes, [`MAX_UNPROVEN`] pieces that failed their hash check, or
//! [`MAX_CONSECUTIVE`] failures in a row drop it for the session. Pure: the caller passes the time.

use std::time::{Duration, Instant};

/// Bad answers after which a mirror is dropped for the session.
pub const MAX_STRIKES: u32 = 3;
/// Pieces a mirror alone sent wrong that no other source has yet proved, after which it is dropped
/// anyway: a file the Internet Archive rewrote after making the torrent spoils a piece or two on every
/// mirror, a broken mirror spoils them all.
pub const MAX_UNPROVEN: u32 = 8;
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
    /// Might work next time, though the mirror answered: a 5xx, a reset mid-body.
    Transient,
    /// No answer at all: the name did not resolve, the connection was refused or timed out, no
    /// headers came. Backed off as [`Failure::Transient`]; a mirror with nothing but these has
    /// never answered (see [`Health::answered`]).
    Unreachable,
    /// The mirror answered wrongly: it counts a strike.
    Bad,
}

/// One mirror's record.
#[derive(Debug, Clone, Default)]
pub struct Health {
    consecutive: u32,
    strikes: u32,
    unproven: u32,
    until: Option<Instant>,
    dropped: Option<String>,
    last_error: Option<String>,
    answered: bool,
}

impl Health {
    /// Why the mirror was dropped, if it was.
    pub fn dropped(&self) -> Option<&str> {
        self.dropped.as_deref()
    }

    /// Whether the mirror ever answered (anything: data, an error status, a bad body).
    pub fn answered(&self) -> bool {
        self.answered
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
        self.answered = true;
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
        self.answered |= kind != Failure::Unreachable;
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

    /// A piece it alone sent failed its hash check, not (yet) proved by another source; `true` if
    /// that drops it now ([`MAX_UNPROVEN`]).
    pub fn suspect(&mut self, why: &str) -> bool {
        if self.dropped.is_some() {
            return false;
        }
        self.unproven += 1;
        self.last_error = Some(why.to_string());
        if self.unproven >= MAX_UNPROVEN {
            self.dropped = Some(format!(
                "{} pieces failed their hash check, last: {why}",
                self.unproven
            ));
            return true;
        }
        false
    }

    /// A piece it sent wrong was proved by another source: the suspicion becomes a strike.
    pub fn proven(&mut self, why: &str, now: Instant) -> bool {
        self.unproven = self.unproven.saturating_sub(1);
        self.strike(why, now)
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
    fn many_unproven_bad_pieces_drop_a_mirror_and_proof_turns_one_into_a_strike() {
        let now = Instant::now();
        let mut h = Health::default();
        for _ in 0..MAX_UNPROVEN - 1 {
            assert!(!h.suspect("piece failed"));
        }
        assert!(!h.proven("sent piece 3 wrong", now), "one strike");
        assert!(
            !h.suspect("piece failed"),
            "the proven one no longer counts as unproven"
        );
        assert!(h.suspect("piece failed"));
        assert!(h.dropped().unwrap().contains("hash check"));
    }

    #[test]
    fn only_a_mirror_that_never_responded_counts_as_unreachable() {
        let t = Instant::now();
        let mut h = Health::default();
        assert!(!h.answered());
        for _ in 0..3 {
            h.failure(Failure::Unreachable, "name not resolved", t);
        }
        assert!(!h.answered(), "backed off, never answered");
        assert_eq!(
            h.wait(t),
            Some(BACKOFF_START * 4),
            "backed off like any failure"
        );
        h.failure(Failure::Transient, "HTTP 503", t);
        assert!(h.answered(), "a 503 is an answer");
        let mut h = Health::default();
        h.failure(Failure::Bad, "HTTP 404", t);
        assert!(h.answered());
        let mut h = Health::default();
        h.success();
        assert!(h.answered());
    }

    #[test]
    fn an_unusable_url_is_dropped_at_once() {
        let mut h = Health::default();
        h.drop_now("only http and https web seeds are supported".into());
        assert_eq!(h.wait(Instant::now()), None);
    }
}
