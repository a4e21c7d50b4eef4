//! Announcing to the trackers: every BEP 12 tier in parallel, trackers within a tier in order with the
//! one that answers moved to the front; `started`, then regular announces at the tracker's interval
//! (clamped), early ones when we run short of peers, `completed`, and `stopped` on the way out. Each
//! announce has its own deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Ctx;
use crate::tracker::tiers::Tiers;
use crate::tracker::{AnnounceRequest, AnnounceResponse, Event, TrackerClient};
use crate::types::InfoHash;

/// Deadline of one regular announce (a UDP tracker's retransmissions would otherwise run for hours).
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline of the `stopped` announce on the way out (Ctrl-C must exit within 3 s).
const STOP_TIMEOUT: Duration = Duration::from_millis(1500);
/// Re-announce interval bounds whatever the tracker says: not hammering it, not vanishing from it.
const MIN_INTERVAL: Duration = Duration::from_secs(60);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Interval when the tracker gives none.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1800);
/// Soonest early re-announce when short of peers.
const MIN_EARLY: Duration = Duration::from_secs(30);
/// Retry delays after a whole tier failed: 30 s doubling to 30 min.
const RETRY_BASE: Duration = Duration::from_secs(30);
const RETRY_MAX: Duration = Duration::from_secs(1800);
/// Peers asked for per announce.
const NUMWANT: u32 = 100;
/// Each wait is shortened by up to this share, at random.
const SPREAD: f64 = 0.1;

/// `wait` shortened by up to [`SPREAD`] (`unit` in [0, 1) picks how much), never below `floor`:
/// torrents started together (500 seeding from one process) then announce and retry spread over
/// a tenth of the interval instead of all at once, and stay spread, each keeping its own phase.
fn spread(wait: Duration, floor: Duration, unit: f64) -> Duration {
    wait.mul_f64(1.0 - SPREAD * unit.clamp(0.0, 1.0))
        .max(floor.min(wait))
}

/// Announces to one tier under `info_hash` until shutdown. A hybrid runs this twice per tier: under
/// its v1 info-hash and under its truncated v2 one (BEP 52), as libtorrent does.
pub async fn tier(
    ctx: Arc<Ctx>,
    client: Arc<TrackerClient>,
    urls: Vec<String>,
    port: u16,
    info_hash: InfoHash,
) {
    let v2 = ctx.v2_swarm == Some(info_hash);
    let mut tier = Tiers::new(vec![urls], &mut rand::rng());
    let mut shutdown = ctx.shutdown.subscribe();
    let mut status = ctx.status.subscribe();
    let mut event = Event::Started;
    let mut tracker_id: Option<Vec<u8>> = None;
    let mut working: Option<String> = None;
    let mut failures = 0u32;
    let mut first_round = true;
    let mut completed_sent = false;
    let asked = Asked {
        ctx: &ctx,
        client: &client,
        info_hash,
        port,
    };
    loop {
        let answer = tokio::select! {
            a = asked.round(&mut tier, event, &tracker_id) => a,
            _ = shutdown.changed() => None,
        };
        let answered = answer.is_some();
        if let Some((url, resp)) = answer {
            working = Some(url);
            if resp.tracker_id.is_some() {
                tracker_id = resp.tracker_id.clone();
            }
            let (wait, min_interval) = intervals(resp.interval, resp.min_interval);
            ctx.lock().tracker_answered(&resp.peers, v2);
            ctx.wake.notify_one();
            completed_sent |= event == Event::Completed;
            event = Event::None;
            failures = 0;
            let last = crate::session::now();
            let _ = wait_next(
                &ctx,
                wait,
                min_interval,
                last,
                &mut shutdown,
                &mut status,
                completed_sent,
            )
            .await;
        }
        if first_round {
            first_round = false;
            ctx.lock().tracker_tier_tried();
        }
        if *shutdown.borrow() {
            break;
        }
        if !answered {
            failures += 1;
            let wait = retry_delay(failures);
            let _ = wait_next(
                &ctx,
                wait,
                wait,
                crate::session::now(),
                &mut shutdown,
                &mut status,
                true,
            )
            .await;
        }
        if *shutdown.borrow() {
            break;
        }
        if !completed_sent && seeder(&ctx, &status) {
            event = Event::Completed;
        }
    }
    // On the way out: `completed` if not yet said, then `stopped`, to the tracker that last answered.
    let Some(url) = working else { return };
    let completed = !completed_sent && seeder(&ctx, &status);
    asked.farewell(&url, completed, tracker_id).await;
}

/// Who a tier's announces are from and for.
struct Asked<'a> {
    ctx: &'a Ctx,
    client: &'a TrackerClient,
    info_hash: InfoHash,
    port: u16,
}

impl Asked<'_> {
    /// One pass over the tier's trackers in order: the first that answers (promoted to the front)
    /// and its answer, or `None` when every one failed (each failure recorded).
    async fn round(
        &self,
        tier: &mut Tiers,
        event: Event,
        tracker_id: &Option<Vec<u8>>,
    ) -> Option<(String, AnnounceResponse)> {
        let urls: Vec<String> = tier.in_order().map(|(_, u)| u.to_string()).collect();
        for url in urls {
            let req = request(
                self.ctx,
                self.info_hash,
                self.port,
                event,
                tracker_id.clone(),
            );
            match tokio::time::timeout(ANNOUNCE_TIMEOUT, self.client.announce(&url, &req)).await {
                Ok(Ok(resp)) => {
                    tracing::debug!(tracker = %url, peers = resp.peers.len(), "announce answered");
                    tier.promote(&url);
                    return Some((url, resp));
                }
                Ok(Err(e)) => {
                    tracing::debug!(tracker = %url, error = %e, "announce failed");
                    self.ctx.lock().tracker_failed(&url, e.to_string());
                }
                Err(_) => {
                    tracing::debug!(tracker = %url, "announce timed out");
                    self.ctx
                        .lock()
                        .tracker_failed(&url, "no answer in time".into());
                }
            }
        }
        None
    }

    /// The last announces, to `url` (the tracker that last answered): `completed` first when
    /// `completed` (never said yet), then `stopped`, each within [`STOP_TIMEOUT`].
    async fn farewell(&self, url: &str, completed: bool, tracker_id: Option<Vec<u8>>) {
        let (ctx, client) = (self.ctx, self.client);
        if completed {
            let req = request(
                ctx,
                self.info_hash,
                self.port,
                Event::Completed,
                tracker_id.clone(),
            );
            let _ = tokio::time::timeout(STOP_TIMEOUT, client.announce(url, &req)).await;
        }
        let req = request(ctx, self.info_hash, self.port, Event::Stopped, tracker_id);
        let r = tokio::time::timeout(STOP_TIMEOUT, client.announce(url, &req)).await;
        tracing::debug!(tracker = %url, answered = matches!(r, Ok(Ok(_))), "stopped announced");
    }
}

/// The wait until the next regular announce (the tracker's `interval`, clamped, then [`spread`])
/// and the soonest an early one may come (its `min interval`, clamped).
fn intervals(interval: Option<u32>, min_interval: Option<u32>) -> (Duration, Duration) {
    let secs = |s: u32| Duration::from_secs(u64::from(s));
    let wait = interval
        .map(secs)
        .unwrap_or(DEFAULT_INTERVAL)
        .clamp(MIN_INTERVAL, MAX_INTERVAL);
    let min = min_interval
        .map(secs)
        .unwrap_or(MIN_EARLY)
        .clamp(MIN_EARLY, MAX_INTERVAL);
    (spread(wait, min, rand::random::<f64>()), min)
}

/// The wait after the `failures`-th failed round of a tier: 30 s doubling to 30 min, [`spread`].
fn retry_delay(failures: u32) -> Duration {
    let wait = RETRY_BASE
        .saturating_mul(1 << failures.saturating_sub(1).min(10))
        .min(RETRY_MAX);
    spread(wait, wait / 2, rand::random::<f64>())
}

/// Whether the download is complete and left us with every piece: a partial download (a file
/// selection) is never announced as `completed`, as libtorrent does.
fn seeder(ctx: &Ctx, status: &tokio::sync::watch::Receiver<super::Status>) -> bool {
    *status.borrow() == super::Status::Complete && ctx.lock().picker().has_all()
}

/// Sleeps until the next announce is due: `wait` elapsed, or (not before `min` after `last`) the
/// torrent completing or running short of peers. Returns early on shutdown.
async fn wait_next(
    ctx: &Ctx,
    wait: Duration,
    min: Duration,
    last: Instant,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
    status: &mut tokio::sync::watch::Receiver<super::Status>,
    completed_sent: bool,
) -> bool {
    let deadline = tokio::time::Instant::from_std(last + wait);
    let early = tokio::time::Instant::from_std(last + min);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return true,
            _ = shutdown.changed() => return false,
            r = status.changed(), if !completed_sent => {
                if r.is_err() || *status.borrow() == super::Status::Complete {
                    return true;
                }
            }
            _ = ctx.need_peers.notified() => {
                if tokio::time::Instant::now() >= early {
                    return true;
                }
            }
        }
    }
}

fn request(
    ctx: &Ctx,
    info_hash: InfoHash,
    port: u16,
    event: Event,
    tracker_id: Option<Vec<u8>>,
) -> AnnounceRequest {
    let left = ctx.lock().picker().left_all();
    let totals = ctx.counters.totals();
    AnnounceRequest {
        info_hash,
        peer_id: ctx.peer_id,
        port,
        uploaded: totals.uploaded,
        downloaded: totals.verified,
        left,
        event,
        numwant: (event != Event::Stopped).then_some(NUMWANT),
        key: ctx.key,
        tracker_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_spread_over_a_tenth_and_never_below_the_floor() {
        let hour = Duration::from_secs(3600);
        assert_eq!(spread(hour, MIN_EARLY, 0.0), hour);
        assert_eq!(spread(hour, MIN_EARLY, 0.5).as_secs(), 3420);
        assert_eq!(spread(hour, MIN_EARLY, 0.999_999).as_secs(), 3240);
        assert_eq!(spread(hour, MIN_EARLY, 7.0).as_secs(), 3240, "clamped");
        let min = Duration::from_secs(60);
        assert_eq!(
            spread(min, min, 0.9),
            min,
            "not below the tracker's min interval"
        );
        assert_eq!(
            spread(Duration::from_secs(30), Duration::from_secs(60), 0.9),
            Duration::from_secs(30),
            "a floor above the wait leaves the wait"
        );
        let spread_of = |n: u32| {
            (0..n)
                .map(|i| spread(hour, MIN_EARLY, f64::from(i) / f64::from(n)).as_secs())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        assert!(spread_of(500) > 300, "500 torrents get distinct times");
    }
}
