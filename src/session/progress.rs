//! What a running session reports: [`Snapshot`]s for the progress display and the [`Outcome`] the
//! closing summary is made from, both read from the torrent state.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::Ctx;

/// A progress sample for the UI.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Bytes verified on disk, in wanted pieces.
    pub have: u64,
    /// Bytes to download: the torrent's size, or the wanted pieces' under a file selection.
    pub total: u64,
    /// Block bytes received this run.
    pub fetched: u64,
    /// Block bytes sent this run.
    pub uploaded: u64,
    /// Connected peers.
    pub peers: usize,
    /// Web seeds still in use.
    pub web_seeds: usize,
    /// With the DHT on: nodes in its routing table, and peer addresses it gave this torrent.
    pub dht: Option<(usize, usize)>,
    /// Useful bytes from web seeds this run.
    pub from_web: u64,
    /// Useful bytes from peers this run.
    pub from_peers: u64,
    /// Where the torrent is in its lifecycle.
    pub phase: super::lifecycle::Phase,
    /// What the current phase is doing, when it has more to say than the figures (the metadata
    /// fetch's status line).
    pub note: String,
    /// Why nothing arrives, once no byte has come for [`STALLED_AFTER`] while downloading.
    pub stalled: Option<String>,
    /// Since when no byte has come.
    pub quiet_since: Option<Instant>,
}

/// No byte for this long while downloading: the progress line says why.
pub const STALLED_AFTER: Duration = Duration::from_secs(10);

/// How a finished download went, for the summary.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The torrent's name.
    pub name: String,
    /// Torrent size, or the selected files' size under a file selection.
    pub total: u64,
    /// Under a file selection: files selected, files in the torrent (pad files not counted).
    pub selected: Option<(usize, usize)>,
    /// Pieces.
    pub pieces: u32,
    /// Pieces already verified on disk at the start.
    pub pieces_on_disk: u32,
    /// Block bytes received.
    pub fetched: u64,
    /// Received bytes that were duplicates, unusable, or in pieces that failed.
    pub wasted: u64,
    /// Block bytes uploaded.
    pub uploaded: u64,
    /// Wall time from start until every piece was verified.
    pub elapsed: Duration,
    /// Time spent seeding after that (`--seed`), if any.
    pub seeded: Option<Duration>,
    /// Per peer that sent useful data: address, client, bytes.
    pub peers: Vec<(SocketAddr, String, u64)>,
    /// Per peer source (where we heard of them): peers connected, useful bytes, by source name.
    pub by_source: Vec<(&'static str, usize, u64)>,
    /// Banned addresses and why.
    pub banned: Vec<(SocketAddr, String)>,
    /// Every web seed: URL, useful bytes, why it was dropped (if it was).
    pub web_seeds: Vec<(String, u64, Option<String>)>,
    /// Useful bytes from web seeds.
    pub from_web: u64,
    /// Useful bytes from peers.
    pub from_peers: u64,
    /// The port we listened on.
    pub port: u16,
}

/// Publishes a progress sample; returns the sources' state when the download is stalled (no byte
/// for [`STALLED_AFTER`]), computed once for both the display and [`unsuppliable`].
pub(super) fn send_progress(
    ctx: &Ctx,
    progress: &watch::Sender<Snapshot>,
    phase: super::lifecycle::Phase,
) -> Option<super::stall::Facts> {
    let (left, peers, web_seeds, dht_peers) = {
        let t = ctx.lock();
        let live = t.web().iter().filter(|w| w.live()).count();
        let dht = t.pool().from_source(super::pool::PeerSource::Dht);
        let p = t.picker();
        ((p.left(), p.wanted_bytes()), t.peer_count(), live, dht)
    };
    let (left, total) = left;
    let dht = ctx
        .engine
        .dht
        .as_ref()
        .filter(|_| !ctx.private)
        .map(|d| (d.nodes(), dht_peers));
    let c = ctx.counters.totals();
    let now = crate::session::now();
    let (quiet_since, facts) = {
        let old = progress.borrow();
        let since = match old.quiet_since {
            Some(t) if old.fetched == c.fetched => t,
            _ => now,
        };
        let quiet = now.saturating_duration_since(since) >= STALLED_AFTER;
        let downloading = phase == super::lifecycle::Phase::Downloading && left > 0;
        (since, (quiet && downloading).then(|| facts(ctx)))
    };
    let stalled = facts.as_ref().map(super::stall::reason);
    // The note (how the metadata came) stays for the display to show once. Watchers are woken only
    // by a change: the display keeps its own clock, and 500 idle seeding torrents would otherwise
    // wake 500 display tasks every tick for nothing.
    progress.send_if_modified(|s| {
        let new = Snapshot {
            have: total - left,
            total,
            fetched: c.fetched,
            uploaded: c.uploaded,
            peers,
            web_seeds,
            dht,
            from_web: c.from_web,
            from_peers: c.from_peers,
            phase,
            note: s.note.clone(),
            stalled,
            quiet_since: Some(quiet_since),
        };
        let modified = *s != new;
        *s = new;
        modified
    });
    facts
}

/// What the torrent state says about its sources, for [`super::stall::reason`].
fn facts(ctx: &Ctx) -> super::stall::Facts {
    let t = ctx.lock();
    let trackers = t.trackers();
    let mut f = super::stall::Facts {
        tracker_errors: trackers.errors().iter().map(|(_, e)| e.clone()).collect(),
        tracker_ok: trackers.answered(),
        web_seeds: t.web().iter().filter(|w| w.live()).count(),
        web_errors: t
            .web()
            .iter()
            .filter(|w| !w.live() || w.health().wait(crate::session::now()) != Some(Duration::ZERO))
            .filter_map(|w| w.health().last_error().map(str::to_string))
            .collect(),
        peers: t.peer_count(),
        choking: t.peers().filter(|p| p.stats.choking).count(),
        untried: t.pool().idle() + t.pool().connecting(),
        ..Default::default()
    };
    let mut first = None;
    let live: Vec<_> = t.web().iter().filter(|w| w.live()).collect();
    for (piece, avail) in t.picker().missing() {
        f.missing += 1;
        if avail == 0 {
            f.unavailable += 1;
            first.get_or_insert(piece);
        }
        if live.iter().all(|w| !w.has().get(piece)) {
            f.web_exhausted += 1;
            if !live.is_empty() {
                f.web_bad_pieces += 1;
            }
        }
    }
    drop(t);
    f.unavailable_file = first
        .and_then(|p| ctx.lengths.piece(p))
        .and_then(|p| ctx.storage.layout().spans(p).next())
        .and_then(|span| ctx.files.get(span.file))
        .map(|file| file.display_path());
    f
}

pub(super) fn outcome(
    ctx: &Ctx,
    pieces_on_disk: u32,
    started: Instant,
    seeding_since: Option<Instant>,
    port: u16,
) -> Outcome {
    let t = ctx.lock();
    let c = ctx.counters.totals();
    let mut peers: Vec<(SocketAddr, String, u64)> = t
        .tallies()
        .filter(|(_, v)| v.bytes > 0)
        .map(|(a, v)| (*a, v.client.clone(), v.bytes))
        .collect();
    peers.sort_by_key(|p| std::cmp::Reverse(p.2));
    let mut by_source: std::collections::BTreeMap<super::pool::PeerSource, (usize, u64)> =
        Default::default();
    for (_, v) in t.tallies() {
        if let Some(source) = v.source {
            let e = by_source.entry(source).or_default();
            e.0 += 1;
            e.1 += v.bytes;
        }
    }
    let mut banned: Vec<(SocketAddr, String)> = t.banned().map(|(a, r)| (*a, r.clone())).collect();
    banned.sort();
    Outcome {
        name: ctx.name.clone(),
        total: if ctx.selection.is_all() {
            ctx.lengths.total()
        } else {
            ctx.selection.selected_bytes()
        },
        selected: (!ctx.selection.is_all())
            .then(|| (ctx.selection.selected_count(), ctx.selection.file_count())),
        pieces: ctx.lengths.piece_count(),
        pieces_on_disk,
        fetched: c.fetched,
        wasted: c.wasted,
        uploaded: c.uploaded,
        elapsed: seeding_since.map_or_else(
            || crate::session::now().saturating_duration_since(started),
            |s| s - started,
        ),
        seeded: seeding_since.map(|s| crate::session::now().saturating_duration_since(s)),
        peers,
        by_source: by_source
            .into_iter()
            .map(|(s, (n, bytes))| (s.as_str(), n, bytes))
            .collect(),
        banned,
        web_seeds: t
            .web()
            .iter()
            .map(|w| {
                (
                    w.url().to_string(),
                    w.bytes(),
                    w.health().dropped().map(str::to_string),
                )
            })
            .collect(),
        from_web: c.from_web,
        from_peers: c.from_peers,
        port,
    }
}

/// `Some` error once, for the configured `--stall-timeout`, no connected peer has any missing piece
/// and no web seed can send one (each dropped, or withholding every missing piece it sent wrong):
/// the run ends (exit status 3) listing the complete and incomplete files. `since` keeps when that
/// began.
pub(super) fn unsuppliable(
    ctx: &Ctx,
    f: &super::stall::Facts,
    since: &mut Option<Instant>,
) -> Option<super::SessionError> {
    let timeout = ctx.config.stall_timeout?;
    // Addresses still to try may have the pieces: not stuck yet.
    let stuck = f.untried == 0
        && f.missing > 0
        && f.unavailable == f.missing
        && f.web_exhausted == f.missing;
    if !stuck {
        *since = None;
        return None;
    }
    let now = crate::session::now();
    let start = *since.get_or_insert(now);
    if now.saturating_duration_since(start) < timeout {
        return None;
    }
    let t = ctx.lock();
    let have = t.picker().have();
    let layout = ctx.storage.layout();
    let mut lines = vec![super::stall::reason(f)];
    for (i, file) in ctx.files.iter().enumerate() {
        if ctx.selection.roles().get(i) != Some(&crate::select::Role::Selected) {
            continue;
        }
        let pieces = layout.pieces_of_file(i);
        let missing = pieces.clone().filter(|&p| !have.get(p)).count();
        let name = crate::text::line(&file.display_path());
        lines.push(match missing {
            0 => format!("  complete: {name}"),
            n => format!(
                "  incomplete: {name} ({n} of {} pieces missing)",
                pieces.len()
            ),
        });
    }
    Some(super::SessionError::Unsuppliable(lines.join("\n")))
}
