//! The download command: every torrent given (`.torrent` files, URLs, magnet links) on one engine,
//! one listening port, one tracker client; a bar each on a terminal, named plain lines otherwise;
//! exit 0 once every one is complete, else non-zero naming the ones that failed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::sync::watch;

use pixtorrent::magnet::Magnet;
use pixtorrent::metainfo::Metainfo;
use pixtorrent::session::engine::{Engine, EngineConfig};
use pixtorrent::session::pool::PeerSource;
use pixtorrent::session::{self, Config, Outcome, SessionError};
use pixtorrent::types::InfoHash;
use pixtorrent::{picker, text, ui};

use super::{interrupted, load_torrent, Cli, Strategy};

/// How one torrent ended.
enum Ended {
    Complete(String, Outcome),
    Interrupted,
    Failed(String, anyhow::Error),
}

/// Downloads every one of `sources`.
pub(crate) async fn run(cli: &Cli, sources: Vec<String>) -> Result<std::process::ExitCode> {
    let engine = Engine::start(EngineConfig {
        net: cli.net(),
        port: cli.port,
        max_connections: cli.max_connections as usize,
    })
    .await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        interrupted().await;
        let _ = stop_tx.send(true);
    });
    let several = sources.len() > 1;
    let bars = (several && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(indicatif::MultiProgress::new);
    let seen: Arc<Mutex<HashSet<InfoHash>>> = Arc::default();
    let mut jobs = Vec::new();
    for source in sources {
        let job = Job {
            cli: cli.clone(),
            engine: engine.clone(),
            stop: stop_rx.clone(),
            bars: bars.clone(),
            named: several,
            seen: seen.clone(),
        };
        jobs.push(tokio::spawn(async move { job.run(&source).await }));
    }
    let mut failed = Vec::new();
    let mut interrupted_any = false;
    for job in jobs {
        match job.await.context("a download task failed")? {
            Ended::Complete(name, outcome) => print!("{}", ui::summary(&name, &outcome)),
            Ended::Interrupted => interrupted_any = true,
            Ended::Failed(name, e) => failed.push((name, e)),
        }
    }
    if interrupted_any {
        eprintln!("interrupted: verified pieces are kept; run the same command to resume");
        return Ok(std::process::ExitCode::from(130));
    }
    match failed.len() {
        0 => Ok(std::process::ExitCode::SUCCESS),
        1 if !several => Err(failed.remove(0).1),
        _ => {
            for (name, e) in &failed {
                let line = text::sanitize(&format!("{name}: {e:#}"), text::Shape::MESSAGE);
                eprintln!("error: {line}");
            }
            Ok(std::process::ExitCode::FAILURE)
        }
    }
}

/// One torrent's download, from its source to its outcome.
struct Job {
    cli: Cli,
    engine: Engine,
    stop: watch::Receiver<bool>,
    bars: Option<indicatif::MultiProgress>,
    named: bool,
    seen: Arc<Mutex<HashSet<InfoHash>>>,
}

impl Job {
    async fn run(self, source: &str) -> Ended {
        let label = if Magnet::is_magnet(source) {
            Magnet::parse(source)
                .ok()
                .and_then(|m| m.name.clone().or(Some(m.info_hash.to_hex())))
                .unwrap_or_else(|| text::line(source))
        } else {
            text::line(source)
        };
        let (meta, peers) = match self.load(source, &label).await {
            Ok(loaded) => loaded,
            Err(e) => return Ended::Failed(label, e),
        };
        let name = meta.info.name.clone();
        if !self.first_time(meta.info_hash) {
            return Ended::Failed(
                name,
                anyhow::anyhow!("this torrent is given more than once"),
            );
        }
        let config = self.config(&meta, peers);
        let mut stop = self.stop.clone();
        let handle = session::start(&self.engine, Arc::new(meta), config, async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        let ui = tokio::spawn(ui::show(
            handle.progress,
            name.clone(),
            self.bars.clone(),
            self.named,
        ));
        let result = handle.done.await;
        let _ = tokio::time::timeout(Duration::from_secs(1), ui).await;
        match result {
            Ok(Ok(outcome)) => Ended::Complete(name, outcome),
            Ok(Err(SessionError::Interrupted)) => Ended::Interrupted,
            Ok(Err(e)) => Ended::Failed(name, e.into()),
            Err(e) => Ended::Failed(name, anyhow::anyhow!("the download task failed: {e}")),
        }
    }

    /// The torrent of `source`, and the peers it names (a magnet link's `x.pe`, and `--peer`).
    async fn load(
        &self,
        source: &str,
        label: &str,
    ) -> Result<(Metainfo, Vec<(std::net::SocketAddr, PeerSource)>)> {
        let cli = &self.cli;
        let mut peers: Vec<(std::net::SocketAddr, PeerSource)> =
            cli.peers.iter().map(|a| (*a, PeerSource::Manual)).collect();
        if !Magnet::is_magnet(source) {
            let bytes = load_torrent(source, &cli.net()).await?;
            let meta = Metainfo::from_bytes(&bytes).with_context(|| text::line(source))?;
            return Ok((meta, peers));
        }
        let magnet = Magnet::parse(source)?;
        let prefix = if self.named {
            format!("{label}: ")
        } else {
            String::new()
        };
        let resolved = session::magnet::resolve(
            &magnet,
            &cli.peers,
            Some(cli.output.as_path()),
            cli.net(),
            self.engine.port(),
            move |line| eprintln!("{prefix}{line}"),
        )
        .await?;
        if let Some(path) = &resolved.saved {
            tracing::debug!(path = %path.display(), "torrent of the magnet link");
        }
        peers.extend(resolved.peers);
        Ok((resolved.meta, peers))
    }

    /// Whether `info_hash` was not seen before (a torrent given twice is refused the second time).
    fn first_time(&self, info_hash: InfoHash) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(info_hash)
    }

    fn config(&self, meta: &Metainfo, peers: Vec<(std::net::SocketAddr, PeerSource)>) -> Config {
        let cli = &self.cli;
        let mut config = Config::new(cli.output.clone());
        config.port = self.engine.port();
        config.net = cli.net();
        config.peers = peers;
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
        if !cli.no_web_seeds {
            config.web_seeds.extend(meta.url_list.iter().cloned());
        }
        for url in &cli.web_seed {
            if !config.web_seeds.contains(url) {
                config.web_seeds.push(url.clone());
            }
        }
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
