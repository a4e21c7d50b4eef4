//! The lifecycle of one torrent as an explicit state machine (pure: no IO, no clock).
//!
//! ```text
//! Metadata --MetadataReady--> Checking --Checked{incomplete}--> Downloading --Complete--+
//!                                 |                                                      |
//!                                 +--Checked{complete}--> Seeding (with --seed) <--------+
//!                                                       | Done    (without)
//! Seeding --SeedLimit or Stop--> Done
//! any live phase --Stop--> Stopped (Seeding: Done)      any live phase --Error--> Failed
//! ```
//!
//! A magnet link starts in `Metadata`, a `.torrent` in `Checking`. `Done`, `Stopped` and `Failed`
//! are final: no event leaves them. An event that cannot happen in a phase (a `Complete` while
//! fetching metadata) is refused and leaves the phase as it was, so a bug in the driver
//! (`super::run`) shows as an error, not as a torrent in a state it never reached.

use std::fmt;

/// Where a torrent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// A magnet link's info dictionary is being fetched from peers (BEP 9).
    Metadata,
    /// The files on disk are being opened and re-checked.
    #[default]
    Checking,
    /// Pieces are being fetched.
    Downloading,
    /// Every piece is on disk and verified; uploading to others (`--seed`).
    Seeding,
    /// Finished: every piece verified (and seeding, if asked, ended).
    Done,
    /// Stopped by the user before the download was complete.
    Stopped,
    /// Stopped by an error that concerns the whole torrent.
    Failed,
}

impl Phase {
    /// Whether no event leaves this phase.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Done | Phase::Stopped | Phase::Failed)
    }

    /// Every phase, for exhaustive tests and docs.
    pub const ALL: [Phase; 7] = [
        Phase::Metadata,
        Phase::Checking,
        Phase::Downloading,
        Phase::Seeding,
        Phase::Done,
        Phase::Stopped,
        Phase::Failed,
    ];

    /// Lower-case name, as the progress lines show it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Metadata => "metadata",
            Phase::Checking => "checking",
            Phase::Downloading => "downloading",
            Phase::Seeding => "seeding",
            Phase::Done => "done",
            Phase::Stopped => "stopped",
            Phase::Failed => "failed",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What happens to a torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The info dictionary is in and matches the info-hash.
    MetadataReady,
    /// The re-check finished; `complete` when every piece was already on disk.
    Checked {
        /// Every piece verified.
        complete: bool,
    },
    /// The last piece was verified.
    Complete,
    /// `--seed-time` or `--seed-ratio` was reached.
    SeedLimit,
    /// The user asked to stop (Ctrl-C, SIGTERM).
    Stop,
    /// An error that ends the torrent (disk full, no peer can ever be found).
    Error,
}

impl Event {
    /// Every event, for exhaustive tests.
    pub const ALL: [Event; 7] = [
        Event::MetadataReady,
        Event::Checked { complete: false },
        Event::Checked { complete: true },
        Event::Complete,
        Event::SeedLimit,
        Event::Stop,
        Event::Error,
    ];
}

/// An event that cannot happen in the phase it was given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event {event:?} cannot happen while {phase}")]
pub struct Unexpected {
    /// The phase, unchanged.
    pub phase: Phase,
    /// The event refused.
    pub event: Event,
}

/// The phase after `event` in `phase`, for a torrent that seeds after completing when `seed`;
/// `None` when the event cannot happen there.
pub fn next(phase: Phase, event: Event, seed: bool) -> Option<Phase> {
    let finished = if seed { Phase::Seeding } else { Phase::Done };
    use Event as E;
    use Phase as P;
    match (phase, event) {
        (P::Done | P::Stopped | P::Failed, _) => None,
        (_, E::Error) => Some(P::Failed),
        (P::Seeding, E::Stop | E::SeedLimit) => Some(P::Done),
        (_, E::Stop) => Some(P::Stopped),
        (P::Metadata, E::MetadataReady) => Some(P::Checking),
        (P::Checking, E::Checked { complete: true }) => Some(finished),
        (P::Checking, E::Checked { complete: false }) => Some(P::Downloading),
        (P::Downloading, E::Complete) => Some(finished),
        _ => None,
    }
}

/// One torrent's lifecycle.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    phase: Phase,
    seed: bool,
}

impl Lifecycle {
    /// A torrent that starts with its metadata (a `.torrent`) or without (a magnet link), and
    /// seeds after completing when `seed`.
    pub fn new(has_metadata: bool, seed: bool) -> Lifecycle {
        let phase = if has_metadata {
            Phase::Checking
        } else {
            Phase::Metadata
        };
        Lifecycle { phase, seed }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Applies `event`; the new phase, or the refusal (the phase unchanged).
    pub fn on(&mut self, event: Event) -> Result<Phase, Unexpected> {
        match next(self.phase, event, self.seed) {
            Some(p) => {
                self.phase = p;
                Ok(p)
            }
            None => Err(Unexpected {
                phase: self.phase,
                event,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_magnet_download_walks_every_phase() {
        let mut l = Lifecycle::new(false, true);
        assert_eq!(l.phase(), Phase::Metadata);
        assert_eq!(l.on(Event::MetadataReady), Ok(Phase::Checking));
        assert_eq!(
            l.on(Event::Checked { complete: false }),
            Ok(Phase::Downloading)
        );
        assert_eq!(l.on(Event::Complete), Ok(Phase::Seeding));
        assert_eq!(l.on(Event::SeedLimit), Ok(Phase::Done));
        assert!(l.phase().is_final());
    }

    #[test]
    fn without_seed_completion_is_done() {
        let mut l = Lifecycle::new(true, false);
        assert_eq!(l.phase(), Phase::Checking);
        assert_eq!(l.on(Event::Checked { complete: true }), Ok(Phase::Done));
        let mut l = Lifecycle::new(true, false);
        l.on(Event::Checked { complete: false }).unwrap();
        assert_eq!(l.on(Event::Complete), Ok(Phase::Done));
    }

    #[test]
    fn stop_before_completion_is_stopped_and_after_it_done() {
        for phase in [Phase::Metadata, Phase::Checking, Phase::Downloading] {
            assert_eq!(next(phase, Event::Stop, true), Some(Phase::Stopped));
            assert_eq!(next(phase, Event::Stop, false), Some(Phase::Stopped));
        }
        assert_eq!(next(Phase::Seeding, Event::Stop, true), Some(Phase::Done));
    }

    #[test]
    fn an_error_fails_every_live_phase() {
        for phase in Phase::ALL.into_iter().filter(|p| !p.is_final()) {
            assert_eq!(next(phase, Event::Error, false), Some(Phase::Failed));
        }
    }

    #[test]
    fn final_phases_take_no_event() {
        for phase in Phase::ALL.into_iter().filter(|p| p.is_final()) {
            for event in Event::ALL {
                for seed in [false, true] {
                    assert_eq!(next(phase, event, seed), None, "{phase:?} {event:?}");
                }
            }
        }
    }

    /// The whole table: every (phase, event, seed) has exactly the outcome the diagram gives.
    #[test]
    fn the_transition_table_is_exactly_the_diagram() {
        let mut allowed = 0;
        for phase in Phase::ALL {
            for event in Event::ALL {
                for seed in [false, true] {
                    let Some(to) = next(phase, event, seed) else {
                        continue;
                    };
                    allowed += 1;
                    assert!(!phase.is_final());
                    let expected = match (phase, event) {
                        (_, Event::Error) => Phase::Failed,
                        (Phase::Seeding, _) => Phase::Done,
                        (_, Event::Stop) => Phase::Stopped,
                        (Phase::Metadata, _) => Phase::Checking,
                        (Phase::Checking, Event::Checked { complete: false }) => Phase::Downloading,
                        _ if seed => Phase::Seeding,
                        _ => Phase::Done,
                    };
                    assert_eq!(to, expected, "{phase:?} {event:?} seed={seed}");
                }
            }
        }
        // Per seed setting: Error x4, Stop x4, MetadataReady, Checked x2, Complete, and SeedLimit
        // only while seeding (reachable only with seed, but the table allows it either way).
        assert_eq!(allowed, 2 * (4 + 4 + 1 + 2 + 1 + 1));
    }

    #[test]
    fn a_refused_event_leaves_the_phase() {
        let mut l = Lifecycle::new(false, false);
        let err = l.on(Event::Complete).unwrap_err();
        assert_eq!(err.phase, Phase::Metadata);
        assert_eq!(l.phase(), Phase::Metadata);
        assert!(l.on(Event::SeedLimit).is_err());
        assert!(l.on(Event::Checked { complete: true }).is_err());
        assert_eq!(l.phase(), Phase::Metadata);
    }
}
