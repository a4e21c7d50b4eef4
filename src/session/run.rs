//! The IO side of a torrent's [`Lifecycle`]: what each phase does, and the events that move it on.
//! `Metadata` resolves a magnet link ([`super::magnet`]); `Checking` opens the files and re-checks
//! them; `Downloading` and `Seeding` run the swarm (peers, web seeds, announcers, choker) until the
//! last piece is verified, the seeding limit, a fatal error or a stop; then the swarm is shut down
//! and the data flushed. Every exit goes through a lifecycle event, so the phase the progress
//! shows is always the one the machine is in.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::lifecycle::{Event, Lifecycle, Phase};
use super::metadata::Reach;
use super::progress::{outcome, send_progress};
use super::resume::ResumeFile;
use super::state::Torrent;
use super::{announce, engine, loops, magnet, now, webseed};
use super::{Config, Ctx, Outcome, SessionError, Snapshot, Source, Status};
use crate::metainfo::Metainfo;
use crate::picker::Picker;
use crate::storage::mmap::MmapStorage;
use crate::storage::{recheck, PieceCheck, Storage, StorageError};
use crate::types::PeerId;

/// One torrent from its source to its outcome.
pub(super) async fn run(
    source: Source,
    mut config: Config,
    progress: watch::Sender<Snapshot>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    engine: &Arc<engine::Shared>,
) -> Result<Outcome, SessionError> {
    let started = now();
    let mut life = Lifecycle::new(matches!(source, Source::Torrent(_)), config.seed);
    tokio::pin!(stop);
    let meta = match source {
        Source::Torrent(meta) => meta,
        Source::Magnet(link) => {
            let resolved = tokio::select! {
                r = metadata(&link, &mut config, engine, &progress) => r,
                _ = &mut stop => Err(SessionError::Interrupted),
            };
            let meta = resolved.map_err(|e| end(&mut life, e))?;
            advance(&mut life, Event::MetadataReady);
            meta
        }
    };
    merge_web_seeds(&mut config, &meta);
    let selection =
        crate::select::Selection::resolve(&config.select, &meta.info.files, meta.info.lengths)
            .map_err(|e| end(&mut life, e.into()))?;
    let total = selection.wanted_bytes(meta.info.lengths);
    progress.send_modify(|s| (s.phase, s.total) = (life.phase(), total));
    let dht = engine.dht.is_some() && !meta.info.private;
    let checked = tokio::select! {
        r = check(&meta, &config, &selection, dht, engine.files.clone()) => r,
        _ = &mut stop => Err(SessionError::Interrupted),
    };
    let checked = checked.map_err(|e| end(&mut life, e))?;
    if let Some(note) = &checked.note {
        tracing::warn!("{note}");
    }
    let resume = checked.resume.clone();
    let pieces_on_disk = checked.have.count();
    let ctx = context(&meta, config, selection, checked, engine);
    let complete = ctx.lock().picker().is_complete();
    advance(&mut life, Event::Checked { complete });
    if let Some(file) = &resume {
        super::resume::save(&ctx, file).await;
    }
    if life.phase() == Phase::Done {
        ctx.status.send_replace(Status::Complete);
        send_progress(&ctx, &progress, life.phase());
        return Ok(outcome(&ctx, pieces_on_disk, started, None, engine.port));
    }
    ctx.engine.attach(ctx.clone());
    let mut swarm = match Swarm::start(&ctx, &meta) {
        Ok(s) => s,
        Err(e) => return Err(end(&mut life, e)),
    };
    if let Some(file) = &resume {
        swarm.tasks.spawn(super::resume::keep(
            ctx.clone(),
            file.clone(),
            pieces_on_disk,
        ));
    }
    let (result, seeding_since) = transfer(&ctx, &mut life, &mut stop, &progress).await;
    let interrupted = matches!(result, Err(SessionError::Interrupted));
    let flushed = swarm.stop(&ctx, interrupted).await;
    if let Some(file) = &resume {
        super::resume::save_at_stop(&ctx, file, interrupted).await;
    }
    send_progress(&ctx, &progress, life.phase());
    result?;
    flushed?;
    Ok(outcome(
        &ctx,
        pieces_on_disk,
        started,
        seeding_since,
        engine.port,
    ))
}

/// The torrent's own web seeds (`url-list`) first, then `--web-seed`s not among them, unless
/// `--no-web-seeds`.
fn merge_web_seeds(config: &mut Config, meta: &Metainfo) {
    if config.use_url_list {
        let mut all = meta.url_list.clone();
        all.extend(
            config
                .web_seeds
                .drain(..)
                .filter(|u| !meta.url_list.contains(u)),
        );
        config.web_seeds = all;
    }
}

/// Applies an event the driver knows to be valid here; a refusal is a driver bug, logged.
fn advance(life: &mut Lifecycle, event: Event) {
    if let Err(e) = life.on(event) {
        tracing::warn!("lifecycle: {e}");
    }
}

/// Ends the lifecycle on `error` (a stop or a failure) and returns it.
fn end(life: &mut Lifecycle, error: SessionError) -> SessionError {
    let event = match error {
        SessionError::Interrupted => Event::Stop,
        _ => Event::Error,
    };
    advance(life, event);
    error
}

/// `Metadata`: the magnet link's torrent, from the output directory or from peers, with progress
/// shown as the snapshot's note (then where the torrent came from); the peers that gave it join
/// `config.peers`.
async fn metadata(
    link: &crate::magnet::Magnet,
    config: &mut Config,
    engine: &Arc<engine::Shared>,
    progress: &watch::Sender<Snapshot>,
) -> Result<Arc<Metainfo>, SessionError> {
    let manual: Vec<std::net::SocketAddr> = config.peers.iter().map(|(a, _)| *a).collect();
    let tx = progress.clone();
    let resolved = magnet::resolve(
        link,
        &manual,
        Some(config.output.as_path()),
        Reach {
            net: config.net.clone(),
            port: engine.port,
            dht: engine.dht.clone(),
            encryption: engine.config.encryption,
            dialer: engine.dialer.clone(),
        },
        move |line| tx.send_modify(|s| s.note = line.to_string()),
    )
    .await?;
    let note = match (&resolved.saved, resolved.fetched) {
        (Some(p), true) => format!("metadata received; torrent saved as {}", p.display()),
        (Some(p), false) => format!("using the torrent saved as {}", p.display()),
        (None, _) => "metadata received".to_string(),
    };
    progress.send_modify(|s| s.note = note);
    config.peers.extend(resolved.peers);
    Ok(Arc::new(resolved.meta))
}

/// What `Checking` found.
struct Checked {
    storage: Arc<dyn Storage>,
    have: crate::bitfield::Bitfield,
    /// A resume file that could not be used, in one line.
    note: Option<String>,
    resume: Option<Arc<ResumeFile>>,
    /// How pieces are judged, as the torrent's format says.
    check: Arc<PieceCheck>,
}

/// `Checking`: fails fast on a torrent with no way to find data or an unwritable directory, then
/// opens the files (as the selection says) and re-checks what is on disk, except the pieces the
/// resume file lets us trust. Pieces reaching a skipped file are neither checked nor trusted.
async fn check(
    meta: &Arc<Metainfo>,
    config: &Config,
    selection: &crate::select::Selection,
    dht: bool,
    files: Arc<crate::storage::pool::FilePool>,
) -> Result<Checked, SessionError> {
    if meta.tiers().is_empty() && config.web_seeds.is_empty() && config.peers.is_empty() && !dht {
        return Err(SessionError::NoTrackers);
    }
    std::fs::create_dir_all(&config.output).map_err(|error| SessionError::Output {
        path: config.output.display().to_string(),
        error,
    })?;
    check_writable(&config.output)?;
    let piece_check = Arc::new(PieceCheck::for_info(&meta.info)?);
    let judge = piece_check.clone();
    let resume = config
        .state_dir
        .as_ref()
        .map(|s| Arc::new(ResumeFile::new(s, &config.output, meta.clone())));
    let trust = resume.clone().filter(|_| !config.recheck);
    let meta = meta.clone();
    let output = config.output.clone();
    let threads = config.hash_threads;
    let roles = selection.roles().to_vec();
    let storable = selection.storable().clone();
    let checked = tokio::task::spawn_blocking(move || -> Result<_, StorageError> {
        // The stamps before the files are opened (opening may allocate them).
        let before = trust.as_ref().map(|r| r.stamps());
        let opened = MmapStorage::open_selected(&output, &meta.info, &roles, files)?;
        let layout = opened.storage.layout();
        let (mut trusted, note) = match (&trust, &before) {
            (Some(r), Some(b)) => r.trusted(b, layout),
            _ => (
                crate::bitfield::Bitfield::new(layout.lengths().piece_count()),
                None,
            ),
        };
        let mut candidates = opened.maybe_present.clone();
        for p in 0..layout.lengths().piece_count() {
            if !storable.get(p) {
                trusted.clear(p);
                candidates.clear(p);
            }
        }
        for p in trusted.ones() {
            candidates.clear(p);
        }
        let mut have = recheck(&opened.storage, &judge, &candidates, threads);
        for p in trusted.ones() {
            have.set(p);
        }
        tracing::debug!(
            trusted = trusted.count(),
            hashed = candidates.count(),
            "start-up check"
        );
        let note = note.filter(|_| opened.maybe_present.count() > 0);
        // The check read every file: let them go, the first read or write reopens what it needs.
        opened.storage.close_files();
        Ok((Arc::new(opened.storage) as Arc<dyn Storage>, have, note))
    })
    .await
    .map_err(|e| SessionError::Fatal(format!("start-up check failed: {e}")))??;
    let (storage, have, note) = checked;
    tracing::debug!(pieces_on_disk = have.count(), "re-check done");
    Ok(Checked {
        storage,
        have,
        note,
        resume,
        check: piece_check,
    })
}

/// Fails fast on an output directory we cannot write, before any network traffic.
fn check_writable(dir: &std::path::Path) -> Result<(), SessionError> {
    let probe = dir.join(format!(".pixtorrent-write-test-{}", std::process::id()));
    let result = std::fs::write(&probe, b"");
    let _ = std::fs::remove_file(&probe);
    result.map_err(|error| SessionError::Output {
        path: dir.display().to_string(),
        error,
    })
}

/// What the tasks of the torrent share, once its pieces are known.
fn context(
    meta: &Metainfo,
    config: Config,
    selection: crate::select::Selection,
    checked: Checked,
    engine: &Arc<engine::Shared>,
) -> Arc<Ctx> {
    let lengths = meta.info.lengths;
    let max_active = (config.max_partial_bytes / u64::from(lengths.piece_length())).max(2) as usize;
    let mut picker = Picker::new(lengths, config.strategy, checked.have, max_active);
    if !selection.is_all() {
        picker = picker.select(selection.wanted());
    }
    let storage = checked.storage;
    let (status, _) = watch::channel(Status::Running);
    let (shutdown, _) = watch::channel(false);
    let counters = Arc::new(super::counters::Counters::default());
    Arc::new(Ctx {
        info_hash: meta.info_hash,
        name: meta.info.name.clone(),
        peer_id: PeerId::generate(&mut rand::rng()),
        key: rand::random(),
        lengths,
        port: engine.port,
        v2_swarm: meta
            .info_hash_v2
            .map(|h| h.truncated())
            .filter(|h| *h != meta.info_hash),
        has_v2: meta.info_hash_v2.is_some(),
        check: checked.check,
        trees: super::hashes::Trees::for_info(&meta.info),
        blame: super::blame::Pending::default(),
        info_bytes: meta.info_bytes.clone().into(),
        private: meta.info.private,
        files: meta.info.files.clone(),
        selection,
        config,
        storage,
        torrent: Mutex::new(Torrent::new(
            picker,
            rand::rngs::StdRng::from_os_rng(),
            counters.clone(),
        )),
        counters,
        wake: Notify::new(),
        need_peers: Notify::new(),
        interest: Notify::new(),
        blocks_freed: Notify::new(),
        status,
        shutdown,
        engine: engine.clone(),
    })
}

/// The tasks of a live torrent: web seed connections, dialler, choker, and one announcer per
/// tracker tier.
struct Swarm {
    tasks: JoinSet<()>,
    announcers: JoinSet<()>,
}

impl Swarm {
    fn start(ctx: &Arc<Ctx>, meta: &Metainfo) -> Result<Swarm, SessionError> {
        let config = &ctx.config;
        {
            let mut t = ctx.lock();
            for &(addr, source) in &config.peers {
                t.pool_mut().add(&[addr], source, now());
            }
        }
        let mut tasks = JoinSet::new();
        for mirror in webseed::mirrors(ctx, meta) {
            let client = crate::fetch::client(config.connect_timeout, &config.net)
                .map_err(|e| SessionError::Fatal(e.to_string()))?;
            let mirror = Arc::new(mirror);
            for _ in 0..config.web_seed_connections.max(1) {
                tasks.spawn(webseed::connection(
                    ctx.clone(),
                    client.clone(),
                    mirror.clone(),
                ));
            }
        }
        tasks.spawn(loops::dial(ctx.clone()));
        tasks.spawn(loops::choke(ctx.clone()));
        let mut announcers = JoinSet::new();
        let tiers = meta.tiers();
        let dht = ctx.engine.dht.clone().filter(|_| !ctx.private);
        // A hybrid joins two swarms (BEP 52): each tier is announced to under both ids.
        let swarms: Vec<_> = std::iter::once(ctx.info_hash).chain(ctx.v2_swarm).collect();
        ctx.lock()
            .set_tracker_tiers(tiers.len() * swarms.len() + usize::from(dht.is_some()));
        if let Some(dht) = dht {
            for &swarm in &swarms {
                tasks.spawn(loops::dht(ctx.clone(), dht.clone(), swarm));
            }
        }
        let client = ctx.engine.tracker.clone();
        for urls in tiers {
            for &info_hash in &swarms {
                announcers.spawn(announce::tier(
                    ctx.clone(),
                    client.clone(),
                    urls.clone(),
                    ctx.engine.port,
                    info_hash,
                ));
            }
        }
        Ok(Swarm { tasks, announcers })
    }

    /// Peers and dialler stop, announcers say `completed`/`stopped` (bounded), data is flushed
    /// (bounded on interrupt: the page cache keeps it either way).
    async fn stop(mut self, ctx: &Ctx, interrupted: bool) -> Result<(), SessionError> {
        ctx.shutdown.send_replace(true);
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while self.announcers.join_next().await.is_some() {}
        })
        .await;
        self.announcers.abort_all();
        self.tasks.abort_all();
        tracing::debug!("announcers done; flushing");
        let storage = ctx.storage.clone();
        let flush = tokio::task::spawn_blocking(move || storage.flush());
        let flushed = if interrupted {
            tokio::time::timeout(Duration::from_millis(700), flush)
                .await
                .ok()
        } else {
            Some(flush.await)
        };
        match flushed {
            Some(Ok(Err(e))) => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// `Downloading` and `Seeding`: turns what happens into lifecycle events until a final phase;
/// returns how it ended and when seeding began.
async fn transfer(
    ctx: &Arc<Ctx>,
    life: &mut Lifecycle,
    stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    progress: &watch::Sender<Snapshot>,
) -> (Result<(), SessionError>, Option<Instant>) {
    let mut status = ctx.status.subscribe();
    let mut seeding_since = (life.phase() == Phase::Seeding).then(now);
    let mut tick = tokio::time::interval(if seeding_since.is_some() {
        SEEDING_TICK
    } else {
        DOWNLOADING_TICK
    });
    // "Nothing to download from" counts from here: not the metadata fetch nor the re-check.
    let began = now();
    let mut unsuppliable_since = None;
    let mut error = None;
    while !life.phase().is_final() {
        let event = tokio::select! {
            _ = stop.as_mut() => Event::Stop,
            _ = status.changed() => match status.borrow_and_update().clone() {
                Status::Running => continue,
                Status::Complete => Event::Complete,
                Status::Failed(why) => {
                    error = Some(SessionError::Fatal(why));
                    Event::Error
                }
            },
            _ = tick.tick() => {
                let stalled = send_progress(ctx, progress, life.phase());
                if let Some(since) = seeding_since {
                    if !seed_done(ctx, since) {
                        if progress.borrow().peers == 0 {
                            tick.reset_after(SEEDING_IDLE_TICK);
                        }
                        continue;
                    }
                    Event::SeedLimit
                } else if let Some(why) = hopeless(ctx, began) {
                    error = Some(why);
                    Event::Error
                } else if let Some(why) = match &stalled {
                    Some(facts) => super::progress::unsuppliable(ctx, facts, &mut unsuppliable_since),
                    // Bytes still arrive (or did in the last 10 s): not stuck.
                    None => {
                        unsuppliable_since = None;
                        None
                    }
                } {
                    error = Some(why);
                    Event::Error
                } else {
                    continue;
                }
            }
        };
        advance(life, event);
        if life.phase() == Phase::Seeding && seeding_since.is_none() {
            seeding_since = Some(now());
            tick = tokio::time::interval(SEEDING_TICK);
            let storage = ctx.storage.clone();
            // Durable before we announce `completed`; seeding goes on meanwhile.
            tokio::task::spawn_blocking(move || storage.flush());
            tracing::info!("download complete; seeding");
        }
    }
    let result = match life.phase() {
        Phase::Stopped => Err(SessionError::Interrupted),
        Phase::Failed => Err(error.unwrap_or_else(|| SessionError::Fatal("failed".into()))),
        _ => Ok(()),
    };
    (result, seeding_since)
}

/// The lifecycle's clock while downloading (progress, stall checks) and while seeding (progress, the
/// seeding limits): a seeding torrent wakes 4 times less often, and one with no peer connected 20
/// times less (its figures cannot change but for a peer arriving).
const DOWNLOADING_TICK: Duration = Duration::from_millis(500);
const SEEDING_TICK: Duration = Duration::from_secs(2);
const SEEDING_IDLE_TICK: Duration = Duration::from_secs(10);

/// With no network at all (no tracker and no web seed ever answered, no peer ever seen), the
/// download gives up after this long instead of waiting out the mirrors' backoff.
const NO_NETWORK_AFTER: Duration = Duration::from_secs(60);

/// `Some(reason)` when nothing will ever arrive: every tracker has failed at least once, none ever
/// answered, we have no peer and no address to try, and either no web seed is left, or none ever
/// answered in [`NO_NETWORK_AFTER`] (then the reason has one line per source with its last error).
fn hopeless(ctx: &Ctx, started: Instant) -> Option<SessionError> {
    let t = ctx.lock();
    let elapsed = now().saturating_duration_since(started);
    let all_tried = t.trackers().all_failed();
    let no_peers = t.peer_count() == 0 && t.pool().idle() == 0 && t.pool().connecting() == 0;
    if !(all_tried && no_peers && elapsed > Duration::from_secs(5) && t.peers_ever() == 0) {
        return None;
    }
    let web_live = t.web().iter().any(|w| w.live());
    // Every web seed failed (it has an error) without ever answering, and no byte ever came: a
    // slow mirror, or one waiting on --max-download-rate, has not failed.
    let web_never = t
        .web()
        .iter()
        .all(|w| !w.health().answered() && w.health().last_error().is_some());
    let nothing = ctx.counters.totals().fetched == 0;
    if web_live && !(web_never && nothing && elapsed >= NO_NETWORK_AFTER) {
        return None;
    }
    if web_live {
        let mut lines = Vec::new();
        for (url, why) in t.trackers().errors() {
            lines.push(format!("  tracker {url}: {why}"));
        }
        if ctx.dht().is_some() {
            lines.push("  DHT: no peer found".to_string());
        }
        for w in t.web() {
            let why = w.health().last_error().unwrap_or("no answer");
            lines.push(format!("  web seed {}: {why}", crate::text::line(w.url())));
        }
        return Some(SessionError::NoNetwork(lines.join("\n")));
    }
    let web = t.web().iter().rev().find_map(|w| w.health().last_error());
    let trackers = (t.trackers().tiers() > 0).then(|| {
        t.trackers()
            .last_error()
            .unwrap_or("no tracker answered")
            .to_string()
    });
    Some(SessionError::NoPeers(match (trackers, web) {
        (Some(tr), Some(w)) => format!("{tr}; every web seed failed, last: {w}"),
        (Some(tr), None) => tr,
        (None, Some(w)) => format!("every web seed failed, last: {w}"),
        (None, None) => "no peer given with --peer could be reached".to_string(),
    }))
}

/// Whether seeding has gone on long enough (`--seed-time`) or given back enough (`--seed-ratio`).
fn seed_done(ctx: &Ctx, since: Instant) -> bool {
    let config = &ctx.config;
    if config
        .seed_time
        .is_some_and(|t| now().saturating_duration_since(since) >= t)
    {
        return true;
    }
    let uploaded = ctx.counters.totals().uploaded as f64;
    config
        .seed_ratio
        .is_some_and(|r| uploaded >= r * ctx.lengths.total() as f64)
}
