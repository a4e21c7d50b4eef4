//! The download command: every torrent given (`.torrent` files, URLs, magnet links) on one engine,
//! one listening port, one tracker client; a bar each on a terminal, named plain lines otherwise;
//! exit 0 once every one is complete, else non-zero naming the ones that failed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::sync::watch;

use pixtorrent::magnet::Magnet;
use pixtorrent::metainfo::Metainfo;
use pixtorrent::session::engine::{Engine, EngineConfig};
use pixtorrent::session::pool::PeerSource;
use pixtorrent::session::{self, Config, Outcome, SessionError};
use pixtorrent::{picker, select, text, ui};

use super::{interrupted, load_torrent, Cli, Strategy};

/// How one torrent ended.
enum Ended {
    Complete(Box<Outcome>),
    Interrupted,
    Failed(String, anyhow::Error),
}

/// A torrent given on the command line, read (a `.torrent` parsed, a magnet link checked) before
/// the engine opens any socket.
struct Loaded {
    /// What the user sees it as: the torrent's name, a magnet's `dn` or info-hash, else the argument.
    label: String,
    source: std::result::Result<session::Source, anyhow::Error>,
}

/// One `--select-file` list.
#[derive(Debug, Clone)]
pub(crate) struct FileIndexes(Vec<std::ops::RangeInclusive<u32>>);

/// Parses a `--select-file` list.
pub(crate) fn parse_file_indexes(text: &str) -> std::result::Result<FileIndexes, String> {
    select::parse_indexes(text)
        .map(FileIndexes)
        .map_err(|e| e.to_string())
}

/// Compiles an `--only` / `--exclude` pattern.
pub(crate) fn parse_glob(text: &str) -> std::result::Result<select::Glob, String> {
    select::Glob::new(text).map_err(|e| e.to_string())
}

/// The file selection the options ask for.
fn select_spec(cli: &Cli) -> select::Spec {
    select::Spec {
        only: cli.only.clone(),
        exclude: cli.exclude.clone(),
        indexes: cli.select_file.iter().flat_map(|l| l.0.clone()).collect(),
    }
}

/// Reads `source` (a file, an http(s) URL or a magnet link). A torrent's file selection is checked
/// here, before any network traffic (a magnet's once its metadata is in).
async fn read(cli: &Cli, source: &str) -> Loaded {
    if Magnet::is_magnet(source) {
        return match Magnet::parse(source) {
            Ok(m) => Loaded {
                label: m.name.clone().unwrap_or_else(|| m.info_hash.to_hex()),
                source: Ok(session::Source::Magnet(Box::new(m))),
            },
            Err(e) => Loaded {
                label: text::line(source),
                source: Err(e.into()),
            },
        };
    }
    let meta = async {
        let bytes = load_torrent(source, &cli.net()).await?;
        // v1, v2-only (BEP 52) and hybrid torrents alike; a v2 `.torrent` must carry its piece
        // layers (only a magnet link's are fetched from peers), which is checked here, before
        // any network traffic.
        let meta = Metainfo::from_bytes_any_version(&bytes).with_context(|| text::line(source))?;
        pixtorrent::storage::PieceCheck::for_info(&meta.info)
            .with_context(|| text::line(&meta.info.name))?;
        select::Selection::resolve(&select_spec(cli), &meta.info.files, meta.info.lengths)
            .with_context(|| text::line(&meta.info.name))?;
        Ok::<_, anyhow::Error>(meta)
    };
    match meta.await {
        Ok(m) => Loaded {
            label: m.info.name.clone(),
            source: Ok(session::Source::Torrent(Arc::new(m))),
        },
        Err(e) => Loaded {
            label: text::line(source),
            source: Err(e),
        },
    }
}

/// Downloads every one of `sources`.
pub(crate) async fn run(cli: &Cli, sources: Vec<String>) -> Result<std::process::ExitCode> {
    let several = sources.len() > 1;
    let mut loaded = Vec::new();
    for source in &sources {
        loaded.push(read(cli, source).await);
    }
    if !several {
        if let Some(Loaded { source: Err(_), .. }) = loaded.first() {
            if let Some(Loaded { source: Err(e), .. }) = loaded.pop() {
                return Err(e);
            }
        }
    }
    let engine = Engine::start(EngineConfig {
        net: cli.net(),
        port: cli.port,
        max_connections: cli.max_connections as usize,
        dht: cli.dht()?,
        encryption: cli.encryption.into(),
        tcp: !cli.no_tcp,
        utp: !cli.no_utp,
        max_download_rate: (cli.max_download_rate > 0).then_some(cli.max_download_rate),
        max_upload_rate: (cli.max_upload_rate > 0).then_some(cli.max_upload_rate),
        max_open_files: cli.max_open_files as usize,
    })
    .await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        interrupted().await;
        let _ = stop_tx.send(true);
    });
    let bars = (several && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(indicatif::MultiProgress::new);
    let mut seen = HashSet::new();
    let mut jobs = tokio::task::JoinSet::new();
    for Loaded { label, source } in loaded {
        let source = source.and_then(|s| {
            if seen.insert(s.info_hash()) {
                Ok(s)
            } else {
                Err(anyhow::anyhow!("this torrent is given more than once"))
            }
        });
        let job = Job {
            cli: cli.clone(),
            engine: engine.clone(),
            stop: stop_rx.clone(),
            bars: bars.clone(),
            named: several,
        };
        jobs.spawn(async move {
            match source {
                Ok(source) => job.run(label, source).await,
                Err(e) => Ended::Failed(label, e),
            }
        });
    }
    // As each torrent ends: its summary, or (with several) its error at once, while the others
    // go on (seeding ones may run until interrupted).
    let mut failed = Vec::new();
    let mut interrupted_any = false;
    while let Some(job) = jobs.join_next().await {
        match job.context("a download task failed")? {
            Ended::Complete(outcome) => print!("{}", ui::summary(&outcome.name, &outcome)),
            Ended::Interrupted => interrupted_any = true,
            Ended::Failed(name, e) => {
                if several {
                    super::print_error(&format!("{name}: "), &e);
                }
                failed.push((name, e));
            }
        }
    }
    if interrupted_any {
        eprintln!("interrupted: verified pieces are kept; run the same command to resume");
        return Ok(std::process::ExitCode::from(130));
    }
    report_failures(failed, several)
}

/// The exit status when some torrents failed: 3 when every failure is "nothing can supply the
/// missing pieces" (--stall-timeout), else 1. One failure of a single torrent is returned, for the
/// caller to print; with several torrents each failure was printed, named, when it happened.
fn report_failures(
    mut failed: Vec<(String, anyhow::Error)>,
    several: bool,
) -> Result<std::process::ExitCode> {
    let unsuppliable = |e: &anyhow::Error| {
        matches!(
            e.downcast_ref::<SessionError>(),
            Some(SessionError::Unsuppliable(_))
        )
    };
    let all_unsuppliable = !failed.is_empty() && failed.iter().all(|(_, e)| unsuppliable(e));
    match failed.len() {
        0 => Ok(std::process::ExitCode::SUCCESS),
        1 if !several && !all_unsuppliable => Err(failed.remove(0).1),
        _ => {
            if !several {
                for (name, e) in &failed {
                    super::print_error(&format!("{name}: "), e);
                }
            }
            Ok(if all_unsuppliable {
                std::process::ExitCode::from(3)
            } else {
                std::process::ExitCode::FAILURE
            })
        }
    }
}

/// One torrent's download, through its lifecycle to its outcome.
struct Job {
    cli: Cli,
    engine: Engine,
    stop: watch::Receiver<bool>,
    bars: Option<indicatif::MultiProgress>,
    named: bool,
}

impl Job {
    async fn run(self, label: String, source: session::Source) -> Ended {
        let config = self.config();
        let mut stop = self.stop.clone();
        let handle = session::start(&self.engine, source, config, async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        let ui = tokio::spawn(ui::show(
            handle.progress,
            label.clone(),
            self.bars.clone(),
            self.named,
        ));
        let result = handle.done.await;
        let _ = tokio::time::timeout(Duration::from_secs(1), ui).await;
        match result {
            Ok(Ok(outcome)) => Ended::Complete(Box::new(outcome)),
            Ok(Err(SessionError::Interrupted)) => Ended::Interrupted,
            Ok(Err(e)) => Ended::Failed(label, e.into()),
            Err(e) => Ended::Failed(label, anyhow::anyhow!("the download task failed: {e}")),
        }
    }

    fn config(&self) -> Config {
        let cli = &self.cli;
        let mut config = Config::new(cli.output.clone());
        config.port = self.engine.port();
        config.net = cli.net();
        config.peers = cli.peers.iter().map(|a| (*a, PeerSource::Manual)).collect();
        config.max_peers = cli.max_peers as usize;
        config.requests_per_peer = cli.requests_per_peer.map(|n| n as usize);
        config.seed = cli.seed;
        config.seed_time = cli.seed_time;
        config.seed_ratio = cli.seed_ratio.filter(|r| r.is_finite() && *r > 0.0);
        config.strategy = match cli.strategy {
            Strategy::Rarest => picker::Strategy::Rarest,
            Strategy::Sequential => picker::Strategy::Sequential,
            Strategy::Random => picker::Strategy::Random,
        };
        config.use_url_list = !cli.no_web_seeds;
        config.web_seeds = cli.web_seed.clone();
        config.state_dir = pixtorrent::paths::state_dir();
        config.recheck = cli.recheck;
        config.stall_timeout = (!cli.stall_timeout.is_zero()).then_some(cli.stall_timeout);
        config.select = select_spec(cli);
        config
    }
}

/// `--info` and `--announce-only` read one torrent.
pub(crate) fn only_one(sources: &[String], what: &str) -> Result<()> {
    if sources.len() > 1 {
        bail!("{what} takes one torrent, {} were given", sources.len());
    }
    Ok(())
}
