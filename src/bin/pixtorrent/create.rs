//! `pixtorrent create`: its options, then hashing with a progress bar (on a terminal), the file
//! written, and a one-line summary with the info-hash(es).

use std::path::PathBuf;

use anyhow::{Context, Result};

use pixtorrent::create::{CreateOptions, Format};
use pixtorrent::report;

/// The options of `pixtorrent create`.
#[derive(clap::Args, Debug, Clone)]
pub struct CreateArgs {
    /// The file or directory to share.
    path: PathBuf,
    /// Where to write the .torrent.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// A tracker URL; repeat for more, each its own tier.
    #[arg(long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// A web seed URL (BEP 19); repeatable.
    #[arg(long = "web-seed", value_name = "URL")]
    web_seeds: Vec<String>,
    /// Piece size in bytes (a power of two, at least 16384), or `auto` for 1,000–2,000 pieces.
    #[arg(long, value_name = "auto|BYTES", default_value = "auto")]
    piece_size: String,
    /// Mark the torrent private (BEP 27: no DHT, no PEX).
    #[arg(long)]
    private: bool,
    /// A comment.
    #[arg(long)]
    comment: Option<String>,
    /// Make a BitTorrent v2-only torrent (BEP 52: a SHA-256 Merkle tree per file), as libtorrent
    /// makes it. Clients that know only v1 (aria2, Transmission, rqbit) cannot use it; pixtorrent
    /// downloads one from its .torrent file (not from a magnet link yet). Default: v1 (see the
    /// README).
    #[arg(long, conflicts_with = "hybrid")]
    v2: bool,
    /// Make a hybrid torrent (BEP 52): v1 and v2 in one info dictionary, as libtorrent makes it, with
    /// BEP 47 pad files so each file starts on a piece boundary. Larger; clients without BEP 47
    /// write the pad files to disk, and Transmission 3 refuses it. Default: v1.
    #[arg(long)]
    hybrid: bool,
}

/// Makes the torrent, writes it, prints what was made.
pub fn run(args: CreateArgs) -> Result<std::process::ExitCode> {
    let piece_length = match args.piece_size.as_str() {
        "auto" => None,
        n => Some(n.parse::<u32>().map_err(|_| {
            anyhow::anyhow!("--piece-size: `{n}` is not `auto` or a number of bytes")
        })?),
    };
    let format = match (args.v2, args.hybrid) {
        (true, _) => Format::V2,
        (_, true) => Format::Hybrid,
        _ => Format::V1,
    };
    let opts = CreateOptions {
        trackers: args.trackers,
        web_seeds: args.web_seeds,
        piece_length,
        private: args.private,
        comment: args.comment,
        threads: 0,
        format,
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("hashing {pos} pieces ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let made = pixtorrent::create::create(&args.path, &opts, &|n| {
        bar.set_position(n);
    })?;
    bar.finish_and_clear();
    let output = &args.output;
    std::fs::write(output, &made.bytes)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let hash = match (format, made.info_hash_v2) {
        (Format::V2, Some(v2)) => format!("info hash (v2) {v2}"),
        (Format::Hybrid, Some(v2)) => format!("info hash {} (v2: {v2})", made.info_hash),
        _ => format!("info hash {}", made.info_hash),
    };
    println!(
        "Created {}: {} file(s), {}, {} pieces of {}, {hash}",
        output.display(),
        made.files,
        report::human_size(made.total),
        made.pieces,
        report::human_size(u64::from(made.piece_length)),
    );
    if made.skipped > 0 {
        println!("  left out: {} hidden file(s) or link(s)", made.skipped);
    }
    Ok(std::process::ExitCode::SUCCESS)
}
