//! What the user sees while downloading: an indicatif bar on a terminal (percent, bytes, rate, peers,
//! ETA), a plain `progress:` line every few seconds otherwise (`seeding:` once complete), and the
//! closing summary.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use crate::report::human_size;
use crate::session::lifecycle::Phase;
use crate::session::{Outcome, Snapshot};

/// Seconds between plain progress lines when stderr is not a terminal (`PIXTORRENT_PROGRESS_SECS`).
pub const DEFAULT_LINE_SECS: u64 = 2;
/// A seeding torrent with nothing new (no upload, the same peers) prints a plain line at most this
/// often: 500 idle torrents would otherwise write 250 lines a second.
pub const QUIET_SEEDING_LINE: Duration = Duration::from_secs(60);

/// Shows one torrent's progress until its sender is dropped: a bar on a terminal (in `bars` when
/// several torrents share the screen), plain lines otherwise, which name the torrent when `named`.
pub async fn show(
    mut rx: watch::Receiver<Snapshot>,
    name: String,
    bars: Option<indicatif::MultiProgress>,
    named: bool,
) {
    if std::io::stderr().is_terminal() {
        bar(&mut rx, name, bars).await
    } else {
        let secs = std::env::var("PIXTORRENT_PROGRESS_SECS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&s| s > 0)
            .unwrap_or(DEFAULT_LINE_SECS);
        let label = if named {
            format!("{}: ", crate::text::line(&name))
        } else {
            String::new()
        };
        lines(&mut rx, Duration::from_secs(secs), &label).await
    }
}

/// Download rate over a sliding window of samples.
struct Rate {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl Rate {
    fn new() -> Rate {
        Rate {
            samples: Default::default(),
        }
    }

    fn push(&mut self, bytes: u64) -> f64 {
        let now = Instant::now();
        self.samples.push_back((now, bytes));
        while self.samples.len() > 2
            && now.duration_since(self.samples[0].0) > Duration::from_secs(5)
        {
            self.samples.pop_front();
        }
        let (t0, b0) = self.samples[0];
        let dt = now.duration_since(t0).as_secs_f64();
        if dt <= 0.0 {
            0.0
        } else {
            bytes.saturating_sub(b0) as f64 / dt
        }
    }
}

fn eta(s: &Snapshot, rate: f64) -> String {
    if rate < 1.0 {
        return "-".into();
    }
    let secs = (s.total - s.have) as f64 / rate;
    format_duration(Duration::from_secs_f64(secs.min(1e7)))
}

/// `1h02m`, `3m05s`, `12s`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn percent(s: &Snapshot) -> f64 {
    if s.total == 0 {
        100.0
    } else {
        s.have as f64 * 100.0 / s.total as f64
    }
}

/// Waits for the next tick, for a new status line while fetching metadata (it has its own pace and
/// may be over before the first tick), or for a phase other than `seen`; `false` as soon as the
/// session is gone (its sender dropped).
async fn wait_tick(
    rx: &mut watch::Receiver<Snapshot>,
    tick: &mut tokio::time::Interval,
    seen: Phase,
) -> bool {
    loop {
        tokio::select! {
            _ = tick.tick() => return true,
            r = rx.changed() => {
                if r.is_err() {
                    return false;
                }
                let s = rx.borrow();
                if s.phase != seen || (s.phase == Phase::Metadata && !s.note.is_empty()) {
                    return true;
                }
            }
        }
    }
}

/// Waits for the snapshot to change or for `until`; `false` as soon as the session is gone.
async fn wait_change(rx: &mut watch::Receiver<Snapshot>, until: Instant) -> bool {
    tokio::select! {
        r = rx.changed() => r.is_ok(),
        _ = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => true,
    }
}

async fn lines(rx: &mut watch::Receiver<Snapshot>, every: Duration, label: &str) {
    let mut rate = Rate::new();
    rate.push(rx.borrow().fetched);
    let mut up_rate = Rate::new();
    up_rate.push(rx.borrow().uploaded);
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut noted: Option<Instant> = None;
    // The last seeding line: uploaded bytes, peers, when.
    let mut seeded: Option<(u64, usize, Instant)> = None;
    let mut seen = rx.borrow().phase;
    // Seeding with nothing new: sleep until a figure changes or the next quiet line is due, not
    // every tick (500 idle torrents ticked 250 times a second).
    let mut quiet_until: Option<Instant> = None;
    loop {
        if let Some(until) = quiet_until.take() {
            if !wait_change(rx, until).await {
                return;
            }
            tick.reset();
        } else if !wait_tick(rx, &mut tick, seen).await {
            return;
        }
        let s = rx.borrow_and_update().clone();
        if seen == Phase::Metadata && s.phase != Phase::Metadata && !s.note.is_empty() {
            eprintln!("progress: {label}{}", crate::text::line(&s.note));
        }
        let entered = s.phase != seen;
        seen = s.phase;
        match s.phase {
            Phase::Metadata => {
                // Its own status lines come at the fetch's pace; a tick right after one adds nothing.
                if noted.is_none_or(|t| t.elapsed() >= every / 2) && !s.note.is_empty() {
                    eprintln!("progress: {label}{}", crate::text::line(&s.note));
                    noted = Some(Instant::now());
                }
                continue;
            }
            Phase::Checking => {
                eprintln!("progress: {label}checking existing files");
                continue;
            }
            // A phase change alone is not a tick: the figures follow at the next one.
            _ if entered => continue,
            _ => {}
        }
        let r = rate.push(s.fetched);
        let up = up_rate.push(s.uploaded);
        if s.have == s.total {
            let quiet = seeded.is_some_and(|(bytes, peers, at)| {
                bytes == s.uploaded && peers == s.peers && at.elapsed() < QUIET_SEEDING_LINE
            });
            if !quiet {
                eprintln!("seeding: {label}{}", seeding(&s, up));
                seeded = Some((s.uploaded, s.peers, Instant::now()));
            } else if up < 1.0 {
                quiet_until = seeded.map(|(_, _, at)| at + QUIET_SEEDING_LINE);
            }
            continue;
        }
        eprintln!(
            "progress: {label}{:.1}% {}/{} {}/s peers {}{}{} ETA {}{}",
            percent(&s),
            human_size(s.have),
            human_size(s.total),
            human_size(r as u64),
            s.peers,
            web_part(&s),
            dht_part(&s),
            eta(&s, r),
            stalled_part(&s)
        );
    }
}

/// ` web seeds 2 (web 10.0 MiB, peers 4.5 MiB)` when the torrent has web seeds, else nothing.
fn web_part(s: &Snapshot) -> String {
    if s.web_seeds == 0 && s.from_web == 0 {
        return String::new();
    }
    format!(
        " web seeds {} (web {}, peers {})",
        s.web_seeds,
        human_size(s.from_web),
        human_size(s.from_peers)
    )
}

/// ` (stalled: 5 peers, all choking us)` once nothing has arrived for 10 s, else nothing.
fn stalled_part(s: &Snapshot) -> String {
    match &s.stalled {
        Some(why) => format!(" (stalled: {})", crate::text::line(why)),
        None => String::new(),
    }
}

/// ` dht 312 nodes 14 peers` with the DHT on, else nothing.
fn dht_part(s: &Snapshot) -> String {
    match s.dht {
        Some((nodes, peers)) => format!(" dht {nodes} nodes {peers} peers"),
        None => String::new(),
    }
}

/// `uploaded 80.1 MiB (2.00x), 12.0 MiB/s up, peers 3`.
fn seeding(s: &Snapshot, up: f64) -> String {
    let ratio = if s.total == 0 {
        0.0
    } else {
        s.uploaded as f64 / s.total as f64
    };
    format!(
        "uploaded {} ({ratio:.2}x), {}/s up, peers {}",
        human_size(s.uploaded),
        human_size(up as u64),
        s.peers
    )
}

async fn bar(
    rx: &mut watch::Receiver<Snapshot>,
    name: String,
    bars: Option<indicatif::MultiProgress>,
) {
    let total = rx.borrow().total;
    let pb = match &bars {
        Some(m) => m.add(ProgressBar::new(total)),
        None => ProgressBar::new(total),
    };
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {percent:>3}% {bytes}/{total_bytes} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(crate::text::block(&name, 0));
    let mut rate = Rate::new();
    rate.push(rx.borrow().fetched);
    let mut up_rate = Rate::new();
    up_rate.push(rx.borrow().uploaded);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        let seen = rx.borrow().phase;
        if !wait_tick(rx, &mut tick, seen).await {
            pb.finish_and_clear();
            return;
        }
        let s = rx.borrow_and_update().clone();
        pb.set_length(s.total);
        match s.phase {
            Phase::Metadata => {
                pb.set_message(crate::text::line(&s.note));
                continue;
            }
            Phase::Checking => {
                pb.set_message("checking existing files");
                continue;
            }
            _ => {}
        }
        let r = rate.push(s.fetched);
        let up = up_rate.push(s.uploaded);
        pb.set_position(s.have);
        if s.have == s.total {
            pb.set_message(format!("seeding: {}", seeding(&s, up)));
            continue;
        }
        pb.set_message(format!(
            "{}/s  {} peers{}{}  ETA {}{}",
            human_size(r as u64),
            s.peers,
            web_part(&s),
            dht_part(&s),
            eta(&s, r),
            stalled_part(&s)
        ));
    }
}

/// The closing summary (stdout). Line shapes are stable: scripts and tests read them.
pub fn summary(name: &str, o: &Outcome) -> String {
    let mut out = String::new();
    let secs = o.elapsed.as_secs_f64().max(0.001);
    out.push_str(&format!(
        "Completed {}: {} in {}\n",
        crate::text::block(name, 0),
        human_size(o.total),
        format_duration(o.elapsed)
    ));
    if let Some((selected, files)) = o.selected {
        out.push_str(&format!(
            "  selected files: {selected} of {files} ({} bytes)\n",
            o.total
        ));
    }
    out.push_str(&format!(
        "  pieces already on disk: {}/{}\n",
        o.pieces_on_disk, o.pieces
    ));
    out.push_str(&format!(
        "  fetched: {} bytes ({}, {}/s average, {} wasted) from {} peers\n",
        o.fetched,
        human_size(o.fetched),
        human_size((o.fetched as f64 / secs) as u64),
        human_size(o.wasted),
        o.peers.len()
    ));
    if o.uploaded > 0 {
        out.push_str(&format!(
            "  uploaded: {} bytes ({})\n",
            o.uploaded,
            human_size(o.uploaded)
        ));
    }
    if let Some(seeded) = o.seeded {
        out.push_str(&format!("  seeded: {}\n", format_duration(seeded)));
    }
    for (addr, client, bytes) in &o.peers {
        out.push_str(&format!(
            "  peer {addr} ({}): {bytes} bytes\n",
            crate::text::block(client, 0)
        ));
    }
    if !o.by_source.is_empty() {
        let parts: Vec<String> = o
            .by_source
            .iter()
            .map(|(source, n, bytes)| format!("{source} {n} ({bytes} bytes)"))
            .collect();
        out.push_str(&format!("  peers by source: {}\n", parts.join(", ")));
    }
    for (addr, why) in &o.banned {
        out.push_str(&format!("  banned {addr}: {why}\n"));
    }
    if !o.web_seeds.is_empty() {
        out.push_str(&format!(
            "  from web seeds: {} bytes, from peers: {} bytes\n",
            o.from_web, o.from_peers
        ));
    }
    for (url, bytes, dropped) in &o.web_seeds {
        let url = crate::text::block(url, 0);
        match dropped {
            Some(why) => out.push_str(&format!(
                "  web seed {url}: {bytes} bytes, dropped: {}\n",
                crate::text::block(why, 0)
            )),
            None => out.push_str(&format!("  web seed {url}: {bytes} bytes\n")),
        }
    }
    out
}
