//! The `pixtorrent` command: clap -> config -> run. Errors become one `error: ...` line on stderr and a
//! non-zero exit; `anyhow` lives only here.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use pixtorrent::bencode::Limits;
use pixtorrent::dht::node::{Dht, DhtConfig, DEFAULT_ROUTERS};
use pixtorrent::magnet::Magnet;
use pixtorrent::metainfo::Metainfo;
use pixtorrent::net::Bind;
use pixtorrent::report;
use pixtorrent::session;
use pixtorrent::text;
use pixtorrent::tracker::probe::probe_all;
use pixtorrent::tracker::{AnnounceRequest, Event, TrackerClient, TrackerConfig};
use pixtorrent::types::PeerId;

mod create;
mod download;

/// Time allowed to fetch a `.torrent` given by URL.
const TORRENT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Download a torrent from its swarm, inspect it, or check its trackers.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "pixtorrent",
    version,
    about,
    max_term_width = 100,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,

    /// A torrent: a .torrent file, an http(s) URL to one, or a magnet link (BEP 9: its metadata is
    /// fetched from peers and saved as DIR/NAME.torrent). Repeatable: one process downloads them all.
    #[arg(short = 't', long = "torrent", value_name = "TORRENT")]
    torrent: Vec<String>,

    /// More torrents, given positionally.
    #[arg(value_name = "TORRENT")]
    torrent_arg: Vec<String>,

    /// Directory the files are downloaded into.
    #[arg(short = 'o', long = "output", value_name = "DIR", default_value = ".")]
    output: PathBuf,

    /// Print what the torrent holds and exit.
    #[arg(long, conflicts_with = "announce_only")]
    info: bool,

    /// With --info: print one JSON object instead of text.
    #[arg(long, requires = "info")]
    json: bool,

    /// Announce to every tracker (started, then stopped), report each one, and exit.
    #[arg(long)]
    announce_only: bool,

    /// Seconds each tracker gets to answer in --announce-only.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    tracker_timeout: u64,

    /// Port to accept peers on (the next free one up to +8 if taken; 0: any). The port announced is
    /// the one actually bound.
    #[arg(long, default_value_t = 6881)]
    port: u16,

    /// Local address of every connection: the peer listener, connections to peers, tracker announces
    /// (HTTP and UDP), web seeds and a torrent fetched by URL. Trackers register this address.
    #[arg(long, value_name = "IP", default_value = "0.0.0.0")]
    bind: std::net::IpAddr,

    /// Send and receive only through this network interface (SO_BINDTODEVICE), e.g. a VPN's `wg0`:
    /// if it goes away, traffic stops instead of taking another route. Combines with --bind.
    #[arg(long, value_name = "NAME")]
    interface: Option<String>,

    /// Message Stream Encryption (MSE/PE) with peers: `prefer` tries it first on every connection
    /// we open, accepts both, and falls back to plaintext; `require` refuses plaintext peers both
    /// ways (RC4 only); `disable` speaks plaintext only.
    #[arg(long, value_enum, default_value_t = EncryptionArg::Prefer)]
    encryption: EncryptionArg,

    /// When no connected peer has any missing piece and no web seed can send one (each failed, or
    /// sent those pieces wrong) for this long, stop with exit status 3, listing the complete and
    /// incomplete files (complete files stay; a later run resumes). 0 waits for ever.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    stall_timeout: Duration,

    /// Ignore the resume data and hash every piece already on disk. By default a restart trusts the
    /// pieces the resume file (in $XDG_STATE_HOME/pixtorrent/resume, else
    /// ~/.local/state/pixtorrent/resume) lists as verified, in files whose size and mtime have not
    /// changed.
    #[arg(long)]
    recheck: bool,

    /// Cap on download speed, all torrents, peers and web seeds together: bytes per second with K, M
    /// or G for KiB, MiB, GiB (e.g. 500K, 8M); 0 = unlimited (the default).
    #[arg(long, value_name = "RATE", default_value = "0", value_parser = parse_rate)]
    max_download_rate: u64,

    /// Cap on upload speed, all torrents and peers together (same units; 0 = unlimited).
    #[arg(long, value_name = "RATE", default_value = "0", value_parser = parse_rate)]
    max_upload_rate: u64,

    /// No uTP (BEP 29): peers only over TCP. By default outgoing connections try TCP first and
    /// uTP after 1 s (or at once when TCP fails), and both are accepted.
    #[arg(long, conflicts_with = "no_tcp")]
    no_utp: bool,

    /// No TCP: peers only over uTP, on the UDP port of --port (for networks where only UDP gets
    /// through, and for tests).
    #[arg(long)]
    no_tcp: bool,

    /// Do not join the DHT (BEP 5). Also PIXTORRENT_NO_DHT=1 (the test suite sets it).
    #[arg(long, env = "PIXTORRENT_NO_DHT", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    no_dht: bool,

    /// Bootstrap the DHT from this node instead of the public routers; repeatable. Loopback and
    /// private node addresses are then accepted (a local DHT).
    #[arg(long, value_name = "HOST:PORT")]
    dht_bootstrap: Vec<String>,

    /// Most peer connections of all torrents together.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_connections: u32,

    /// Most data files open at once, all torrents together; the least recently used is closed
    /// first, and a file idle for a minute or two is closed too.
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_open_files: u32,

    /// Most peers connected at once, per torrent.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_peers: u32,

    /// Pin the number of outstanding 16 KiB requests per peer (default: adaptive, at least 10).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    requests_per_peer: Option<u32>,

    /// Piece selection order for downloads.
    #[arg(long, value_enum, default_value_t = Strategy::Rarest)]
    strategy: Strategy,

    /// Upload after the download (or at once, when DIR already holds the data) until interrupted or
    /// a --seed-time / --seed-ratio limit.
    #[arg(long)]
    seed: bool,

    /// With --seed: stop seeding after this long (e.g. 90s, 30m, 2h; plain numbers are seconds).
    #[arg(long, value_name = "DURATION", requires = "seed", value_parser = parse_duration)]
    seed_time: Option<Duration>,

    /// With --seed: stop once uploaded bytes reach R times the torrent's size.
    #[arg(long, value_name = "R", requires = "seed")]
    seed_ratio: Option<f64>,

    /// Do not use the torrent's web seeds (its `url-list`); those given with --web-seed still are.
    #[arg(long)]
    no_web_seeds: bool,

    /// Also download from this HTTP(S) mirror (BEP 19 web seed); repeatable. For a multi-file torrent
    /// it is a base URL to which NAME/PATH is appended; for a single file, the file's URL (or a
    /// directory URL ending in `/`).
    #[arg(long = "web-seed", value_name = "URL")]
    web_seed: Vec<String>,

    /// Download only the files whose path inside the torrent matches PATTERN; repeatable. Without a
    /// '/', the pattern matches a file's name at any depth ('*.mp4'); with one, the whole path below
    /// the torrent's top directory ('Content/*.mp4', 'extras/**'). '*' and '?' stay within a
    /// directory, '**' crosses them, '[a-z]' is a set. Adds to --select-file.
    #[arg(long, value_name = "PATTERN", value_parser = download::parse_glob)]
    only: Vec<pixtorrent::select::Glob>,

    /// Leave out the files whose path matches PATTERN (as for --only); repeatable; wins over --only
    /// and --select-file.
    #[arg(long, value_name = "PATTERN", value_parser = download::parse_glob)]
    exclude: Vec<pixtorrent::select::Glob>,

    /// Download only these files, by the 1-based indexes --info lists (e.g. 1,3-5); repeatable.
    /// Unselected files are not created, except that a file sharing a piece with a selected one is
    /// created sparse and holds only that piece's bytes.
    #[arg(long, value_name = "LIST", value_parser = download::parse_file_indexes)]
    select_file: Vec<download::FileIndexes>,

    /// Also connect to this peer (IP:PORT, or [IPv6]:PORT); repeatable.
    #[arg(long = "peer", value_name = "IP:PORT")]
    peers: Vec<std::net::SocketAddr>,

    /// More logging: -v for debug from pixtorrent, -vv for everything.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// `--encryption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EncryptionArg {
    Prefer,
    Require,
    Disable,
}

impl From<EncryptionArg> for session::mse::Encryption {
    fn from(e: EncryptionArg) -> Self {
        match e {
            EncryptionArg::Prefer => session::mse::Encryption::Prefer,
            EncryptionArg::Require => session::mse::Encryption::Require,
            EncryptionArg::Disable => session::mse::Encryption::Disable,
        }
    }
}

impl Cli {
    /// The DHT's settings (`None`: `--no-dht`). Its state lives in the user's state directory.
    /// Under `PIXTORRENT_FORBID_PUBLIC_DHT=1` (the test suite) a node that would bootstrap from
    /// the public routers is an error, so no test reaches them by accident.
    fn dht(&self) -> Result<Option<DhtConfig>> {
        if self.no_dht {
            return Ok(None);
        }
        let state = pixtorrent::dht::persist::default_path();
        let saved_local = state
            .as_deref()
            .and_then(pixtorrent::dht::persist::load)
            .is_some_and(|s| s.local);
        let local = !self.dht_bootstrap.is_empty() || saved_local;
        let forbidden = std::env::var("PIXTORRENT_FORBID_PUBLIC_DHT").is_ok_and(|v| v == "1");
        if forbidden && !local {
            bail!(
                "the DHT would bootstrap from the public routers, which PIXTORRENT_FORBID_PUBLIC_DHT \
                 forbids: pass --no-dht or --dht-bootstrap HOST:PORT"
            );
        }
        let bootstrap = if local {
            self.dht_bootstrap.clone()
        } else {
            DEFAULT_ROUTERS.iter().map(|s| s.to_string()).collect()
        };
        Ok(Some(DhtConfig {
            net: self.net(),
            port: self.port,
            bootstrap,
            allow_local: local,
            state,
        }))
    }

    /// Where sockets come from (`--bind`, `--interface`).
    fn net(&self) -> Bind {
        Bind::new(self.bind, self.interface.clone())
    }
}

#[derive(clap::Subcommand, Debug, Clone)]
enum Cmd {
    /// Make a .torrent (v1; --v2 or --hybrid for BEP 52) of a file or a directory (files by name in
    /// each directory, byte by byte; hidden files and symbolic links are left out).
    Create(create::CreateArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    Rarest,
    Sequential,
    Random,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    pixtorrent::net::raise_open_file_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            print_error("", &e);
            std::process::ExitCode::FAILURE
        }
    };
    // Do not wait for a flush still running on the blocking pool after Ctrl-C: the data is in the
    // page cache and the kernel writes it back whether or not we wait.
    runtime.shutdown_timeout(Duration::from_millis(200));
    code
}

/// Prints `error: PREFIX…` for `e`, each line sanitized: one line, and one more for each source
/// an error lists (no network, files left incomplete).
pub(crate) fn print_error(prefix: &str, e: &anyhow::Error) {
    let msg = format!("{e:#}");
    let mut lines = msg.lines().take(10_000);
    let first = format!("{prefix}{}", lines.next().unwrap_or_default());
    eprintln!("error: {}", text::sanitize(&first, text::Shape::MESSAGE));
    for line in lines {
        eprintln!("{}", text::sanitize(line, text::Shape::MESSAGE));
    }
}

fn init_logging(verbose: u8) {
    // librqbit-utp warns when its socket's dispatcher stops, which it does at every exit once the
    // runtime goes (a `broken pipe` line after the one-line error): its errors still show.
    let filter = match verbose {
        0 => "warn,librqbit_utp=error",
        1 => "warn,librqbit_utp=error,pixtorrent=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PIXTORRENT_LOG")
        .unwrap_or_else(|_| filter.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Every record goes through `text::sanitize`: peers, trackers and torrents put text in them.
        .with_writer(|| text::SafeWriter(std::io::stderr()))
        .with_ansi(false)
        .init();
}

async fn run(cli: Cli) -> Result<std::process::ExitCode> {
    if let Some(Cmd::Create(args)) = cli.command {
        return tokio::task::spawn_blocking(move || create::run(args)).await?;
    }
    let sources: Vec<String> = cli
        .torrent
        .iter()
        .chain(cli.torrent_arg.iter())
        .cloned()
        .collect();
    if sources.is_empty() {
        bail!("no torrent given: use -t FILE.torrent (or an http(s) URL, or a magnet link); see --help");
    }
    if cli.info || cli.announce_only {
        download::only_one(
            &sources,
            if cli.info {
                "--info"
            } else {
                "--announce-only"
            },
        )?;
        return inspect(&cli, &sources[0]).await;
    }
    download::run(&cli, sources).await
}

/// `--info` or `--announce-only` of one torrent.
async fn inspect(cli: &Cli, source: &str) -> Result<std::process::ExitCode> {
    let meta = if Magnet::is_magnet(source) {
        if cli.announce_only {
            bail!("--announce-only needs a .torrent (a magnet link's trackers are asked when it is downloaded)");
        }
        let magnet = Magnet::parse(source)?;
        // Any free port: --info starts no listener, and a download may hold --port.
        let dht = match cli.dht()? {
            Some(config) => Some(Dht::start(DhtConfig { port: 0, ..config }).await?),
            None => None,
        };
        session::magnet::resolve(
            &magnet,
            &cli.peers,
            None,
            session::metadata::Reach {
                net: cli.net(),
                port: cli.port,
                dht,
                encryption: cli.encryption.into(),
                // No uTP socket here (--info starts no listener): TCP only.
                dialer: session::dial::Dialer::tcp_only(cli.net()),
            },
            |line| eprintln!("{line}"),
        )
        .await?
        .meta
    } else {
        let bytes = load_torrent(source, &cli.net()).await?;
        // --info describes a v2-only torrent too; the rest needs v1 piece hashes.
        let parse = if cli.info {
            Metainfo::from_bytes_any_version
        } else {
            Metainfo::from_bytes
        };
        parse(&bytes).with_context(|| text::line(source))?
    };
    tracing::debug!(info_hash = %meta.info_hash, name = %meta.info.name, "torrent loaded");
    if cli.info {
        if cli.json {
            let json = serde_json::to_string_pretty(&report::info_json(&meta))?;
            println!("{}", text::json_escaped(&json));
        } else {
            print!("{}", report::info_text(&meta));
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    announce_only(cli, &meta).await
}

/// `90`, `90s`, `30m`, `2h`, `1d`.
/// A rate in bytes per second (`0`: unlimited), see [`pixtorrent::ratelimit::parse_rate`].
fn parse_rate(text: &str) -> Result<u64, String> {
    pixtorrent::ratelimit::parse_rate(text).map(|r| r.unwrap_or(0))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90s, 30m or 2h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86400),
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use s, m, h or d)"
            ))
        }
    };
    Ok(Duration::from_secs(secs))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

async fn announce_only(cli: &Cli, meta: &Metainfo) -> Result<std::process::ExitCode> {
    let tiers = meta.tiers();
    if tiers.is_empty() {
        bail!("the torrent lists no trackers (it relies on DHT or web seeds)");
    }
    let client = Arc::new(TrackerClient::new(TrackerConfig {
        bind: cli.net(),
        ..TrackerConfig::default()
    })?);
    let template = AnnounceRequest {
        info_hash: meta.info_hash,
        peer_id: PeerId::generate(&mut rand::rng()),
        port: cli.port,
        uploaded: 0,
        downloaded: 0,
        left: meta.info.lengths.total(),
        event: Event::Started,
        numwant: None,
        key: rand::random(),
        tracker_id: None,
    };
    let outcomes = probe_all(
        client,
        &tiers,
        &template,
        Duration::from_secs(cli.tracker_timeout.max(1)),
    )
    .await;
    let (text, any) = report::probe_lines(&outcomes);
    print!("{text}");
    Ok(if any {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// Reads a `.torrent` from a path or an http(s) URL, refusing anything over the torrent size limit.
async fn load_torrent(source: &str, bind: &Bind) -> Result<Vec<u8>> {
    let max = Limits::TORRENT.max_len;
    let lower = source.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        pixtorrent::fetch::check(bind, source)?;
        let client = pixtorrent::fetch::client(Duration::from_secs(10), bind)?;
        let body = pixtorrent::fetch::get(&client, source, max, TORRENT_FETCH_TIMEOUT)
            .await
            .with_context(|| format!("cannot fetch {source}"))?;
        if body.status != 200 {
            bail!(
                "cannot fetch {source}: HTTP {} {}",
                body.status,
                body.reason
            );
        }
        return Ok(body.bytes);
    }
    let file = std::fs::File::open(source).with_context(|| format!("cannot open {source}"))?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {source}"))?;
    if bytes.len() > max {
        bail!(
            "{source}: larger than the {} MiB limit for a .torrent file",
            max / (1024 * 1024)
        );
    }
    Ok(bytes)
}
