//! Probing every tracker of a torrent at once (`--announce-only`): `started` then `stopped` to each, so
//! the check leaves no ghost peer behind, each tracker under its own deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{AnnounceRequest, AnnounceResponse, Event, TrackerClient, TrackerError};

/// Most trackers probed at the same moment.
pub const MAX_CONCURRENT_PROBES: usize = 32;

/// What one tracker did.
#[derive(Debug)]
pub struct ProbeOutcome {
    /// Tier number, from 0.
    pub tier: usize,
    /// The tracker URL.
    pub url: String,
    /// Time from sending `started` to its answer (or to the failure).
    pub latency: Duration,
    /// The answer to `started`.
    pub result: Result<AnnounceResponse, TrackerError>,
    /// Why the `stopped` announce failed, when `started` succeeded but `stopped` did not.
    pub stop_error: Option<TrackerError>,
}

/// Probes every tracker of every tier concurrently; outcomes come back in tier order. Each announce gets
/// at most `deadline`.
pub async fn probe_all(
    client: Arc<TrackerClient>,
    tiers: &[Vec<String>],
    template: &AnnounceRequest,
    deadline: Duration,
) -> Vec<ProbeOutcome> {
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_PROBES));
    let mut set = JoinSet::new();
    let mut order = 0usize;
    for (tier, urls) in tiers.iter().enumerate() {
        for url in urls {
            let (client, permits, url, req) = (
                client.clone(),
                permits.clone(),
                url.clone(),
                template.clone(),
            );
            let pos = order;
            order += 1;
            set.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (pos, probe_one(&client, tier, url, req, deadline).await)
            });
        }
    }
    let mut outcomes = Vec::with_capacity(order);
    while let Some(joined) = set.join_next().await {
        // A panicking probe task would be a bug of ours; it loses its line rather than the whole report.
        if let Ok(done) = joined {
            outcomes.push(done);
        }
    }
    outcomes.sort_by_key(|(pos, _)| *pos);
    outcomes.into_iter().map(|(_, o)| o).collect()
}

async fn probe_one(
    client: &TrackerClient,
    tier: usize,
    url: String,
    mut req: AnnounceRequest,
    deadline: Duration,
) -> ProbeOutcome {
    req.event = Event::Started;
    let start = Instant::now();
    let result = within(deadline, client.announce(&url, &req)).await;
    let latency = start.elapsed();
    let mut stop_error = None;
    if let Ok(reply) = &result {
        req.event = Event::Stopped;
        req.numwant = Some(0);
        req.tracker_id = reply.tracker_id.clone();
        stop_error = within(deadline, client.announce(&url, &req)).await.err();
    }
    ProbeOutcome {
        tier,
        url,
        latency,
        result,
        stop_error,
    }
}

async fn within<T>(
    deadline: Duration,
    fut: impl std::future::Future<Output = Result<T, TrackerError>>,
) -> Result<T, TrackerError> {
    tokio::time::timeout(deadline, fut)
        .await
        .unwrap_or(Err(TrackerError::Timeout(deadline)))
}
