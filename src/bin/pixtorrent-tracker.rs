//! `pixtorrent-tracker`: the project's HTTP/UDP tracker. In memory by default; `--redis URL` (or
//! `--redis-cluster URL,...`) shares swarm state between tracker processes. Every option can also
//! come from the environment (`PIXTORRENT_TRACKER_*`). Errors are one line on stderr and exit
//! status 1.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use pixtorrent::tracker_server::store::{self, Limits};
use pixtorrent::tracker_server::{self, listener, Config};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A BitTorrent tracker: HTTP (and UDP) announce and scrape, in memory or on Redis"
)]
struct Cli {
    /// HTTP address to listen on.
    #[arg(
        long,
        env = "PIXTORRENT_TRACKER_LISTEN",
        default_value = "0.0.0.0:6969"
    )]
    listen: SocketAddr,
    /// Also answer UDP (BEP 15) on this address.
    #[arg(long, env = "PIXTORRENT_TRACKER_UDP", value_name = "ADDR:PORT")]
    udp: Option<SocketAddr>,
    /// Keep swarms in Redis (`redis://[:password@]host:port[/db]`) instead of memory.
    #[arg(long, env = "PIXTORRENT_TRACKER_REDIS", value_name = "URL")]
    redis: Option<String>,
    /// Keep swarms in a Redis Cluster instead: one or more of its nodes (`redis://host:port`,
    /// comma-separated); the tracker finds the others and follows failovers.
    #[arg(
        long,
        env = "PIXTORRENT_TRACKER_REDIS_CLUSTER",
        value_name = "URL[,URL...]",
        value_delimiter = ',',
        conflicts_with = "redis"
    )]
    redis_cluster: Vec<String>,
    /// Prefix of every Redis key.
    #[arg(
        long,
        env = "PIXTORRENT_TRACKER_REDIS_PREFIX",
        default_value = "pixtorrent"
    )]
    redis_prefix: String,
    /// Seconds between announces asked of clients (`min interval` is half); peers expire after
    /// about twice this.
    #[arg(long, env = "PIXTORRENT_TRACKER_INTERVAL", default_value_t = 1800,
          value_parser = clap::value_parser!(u32).range(10..=86_400))]
    interval: u32,
    /// Track only the info-hashes in this file (one hex hash per line, `#` comments).
    #[arg(long, env = "PIXTORRENT_TRACKER_WHITELIST", value_name = "FILE")]
    whitelist: Option<PathBuf>,
    /// Honour the announce's `ip` parameter (only where every client is trusted).
    #[arg(long, env = "PIXTORRENT_TRACKER_TRUST_IP_PARAM")]
    trust_ip_param: bool,
    /// Behind a reverse proxy: take the client's address from this header (e.g. X-Forwarded-For).
    #[arg(long, env = "PIXTORRENT_TRACKER_REAL_IP_HEADER", value_name = "NAME")]
    real_ip_header: Option<String>,
    /// Most HTTP connections open at once. At the cap a new client evicts the oldest connection
    /// still waiting for a request head; when every one is being answered, it waits in the backlog.
    #[arg(
        long,
        env = "PIXTORRENT_TRACKER_MAX_CONNECTIONS",
        default_value_t = 4096
    )]
    max_connections: usize,
    /// Seconds a client has to send a whole request head (also the most a keep-alive connection
    /// may idle between requests).
    #[arg(long, env = "PIXTORRENT_TRACKER_HEADER_TIMEOUT", value_name = "SECS",
          default_value_t = listener::HEAD_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=300))]
    header_timeout: u64,
    /// UDP datagrams a second from one source address (an IPv6 /64), bursts of twice that;
    /// more are dropped. 0: no limit.
    #[arg(long, env = "PIXTORRENT_TRACKER_UDP_RATE", value_name = "N",
          default_value_t = tracker_server::DEFAULT_UDP_RATE)]
    udp_rate: u32,
    /// Most torrents tracked at once. Past it an announce that would start a new swarm gets a
    /// failure reason; swarms already tracked keep working. Room comes back as swarms empty.
    #[arg(long, env = "PIXTORRENT_TRACKER_MAX_TORRENTS", value_name = "N",
          default_value_t = store::DEFAULT_MAX_TORRENTS,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_torrents: u64,
    /// Most peers tracked at once, all torrents together. Past it a new peer gets a failure
    /// reason; peers already tracked keep announcing (and `stopped` or expiry makes room).
    #[arg(long, env = "PIXTORRENT_TRACKER_MAX_PEERS_TOTAL", value_name = "N",
          default_value_t = store::DEFAULT_MAX_PEERS_TOTAL,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_peers_total: u64,
    /// More logging (-v debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let level = if cli.verbose > 0 {
        "pixtorrent=debug"
    } else {
        "pixtorrent=warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        // Clients put text in what we log (peer ids, queries): every record goes through
        // `text::sanitize`.
        .with_writer(|| pixtorrent::text::SafeWriter(std::io::stderr()))
        .with_ansi(false)
        .init();
    let config = Config {
        listen: cli.listen,
        udp: cli.udp,
        redis: cli.redis,
        redis_cluster: cli.redis_cluster,
        redis_prefix: cli.redis_prefix,
        interval: cli.interval,
        whitelist: cli.whitelist,
        trust_ip_param: cli.trust_ip_param,
        real_ip_header: cli.real_ip_header,
        max_connections: cli.max_connections,
        head_timeout: std::time::Duration::from_secs(cli.header_timeout),
        udp_rate: cli.udp_rate,
        limits: Limits {
            torrents: cli.max_torrents,
            peers: cli.max_peers_total,
        },
    };
    // Each connection is a file: --max-connections 4096 needs more than the usual 1024.
    pixtorrent::net::raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(tracker_server::run(
        config,
        |bound, store| {
            println!("listening: http://{}/announce (store: {store})", bound.http);
            if let Some(udp) = bound.udp {
                println!("listening: udp://{udp}/announce");
            }
        },
        shutdown(),
    ));
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: {}",
                pixtorrent::text::sanitize(&e.to_string(), pixtorrent::text::Shape::MESSAGE)
            );
            std::process::ExitCode::FAILURE
        }
    }
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
