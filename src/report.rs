//! What the CLI prints about a torrent (`--info`, as text or JSON) and about its trackers
//! (`--announce-only`). Pure formatting: values in, strings out.

use std::fmt::Write as _;

use serde_json::json;

use crate::magnet::magnet_link;
use crate::metainfo::{Info, MetaVersion, Metainfo};
use crate::text::{block as clean_text, line as sanitize};
use crate::tracker::probe::ProbeOutcome;

/// `1.50 MiB`: binary units, two decimals, bytes below 1 KiB.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// `441,396,773`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `2024-09-25 16:54:07 UTC` from Unix seconds (proleptic Gregorian, any i64 that fits a year).
pub fn utc_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn size_both(bytes: u64) -> String {
    format!("{} ({} bytes)", human_size(bytes), grouped(bytes))
}

/// The magnet link of a torrent, with its trackers and web seeds.
pub fn magnet(m: &Metainfo) -> String {
    let tiers = m.tiers();
    let ids = crate::types::InfoHashes {
        v1: (m.info.version() != crate::metainfo::MetaVersion::V2).then_some(m.info_hash),
        v2: m.info_hash_v2,
    };
    magnet_link(&ids, &m.info.name, tiers.iter().flatten(), &m.url_list)
}

/// The `Format:` line of a torrent that is not plain v1.
fn format(i: &Info) -> Option<String> {
    match (i.version(), i.v2_set_aside()) {
        (MetaVersion::Hybrid, _) => Some("BitTorrent v1+v2 hybrid (v1 used)".into()),
        (MetaVersion::V2, _) => Some("BitTorrent v2 only".into()),
        (MetaVersion::V1, Some(why)) if i.hybrid => Some(format!(
            "BitTorrent v1+v2 hybrid, v2 part set aside ({}): v1 used",
            sanitize(&why.to_string())
        )),
        (MetaVersion::V1, _) => None,
    }
}

/// `--info` as text.
pub fn info_text(m: &Metainfo) -> String {
    let i = &m.info;
    let l = &i.lengths;
    let mut s = String::new();
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(s, "{k:<13}{v}");
    };
    line("Name:", &sanitize(&i.name));
    line("Info hash:", &m.info_hash.to_hex());
    if let Some(v2) = &m.info_hash_v2 {
        line("Hash (v2):", &v2.to_hex());
    }
    line("Size:", &size_both(l.total()));
    line(
        "Pieces:",
        &format!(
            "{} x {} (last piece: {}, {} bytes)",
            grouped(u64::from(l.piece_count())),
            human_size(u64::from(l.piece_length())),
            human_size(u64::from(l.last_piece_len())),
            grouped(u64::from(l.last_piece_len()))
        ),
    );
    line("Private:", if i.private { "yes" } else { "no" });
    if let Some(format) = format(i) {
        line("Format:", &format);
    }
    if let Some(c) = &m.comment {
        line("Comment:", &clean_text(c, 13));
    }
    if let Some(c) = &m.created_by {
        line("Created by:", &clean_text(c, 13));
    }
    if let Some(d) = m.creation_date {
        line("Created on:", &utc_date(d));
    }
    let tiers = m.tiers();
    if tiers.is_empty() {
        line("Trackers:", "none");
    } else {
        let _ = writeln!(s, "Trackers:");
        for (t, urls) in tiers.iter().enumerate() {
            for url in urls {
                let _ = writeln!(s, "  tier {}: {}", t + 1, sanitize(url));
            }
        }
    }
    if m.url_list.is_empty() {
        let _ = writeln!(s, "{:<13}none", "Web seeds:");
    } else {
        let _ = writeln!(s, "Web seeds:");
        for url in &m.url_list {
            let _ = writeln!(s, "  {}", sanitize(url));
        }
    }
    let _ = writeln!(
        s,
        "Files ({}), with the indexes --select-file takes:",
        i.files.len()
    );
    let width = i.files.len().to_string().len();
    for (idx, f) in i.files.iter().enumerate() {
        let path = i
            .file_path(idx)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut flags = String::new();
        for (on, tag) in [
            (f.attr.pad, " [pad]"),
            (f.attr.executable, " [exec]"),
            (f.attr.symlink, " [symlink]"),
        ] {
            if on {
                flags.push_str(tag);
            }
        }
        let _ = writeln!(
            s,
            "  {:>width$}  {:>12}  {path}{flags}",
            idx + 1,
            human_size(f.length)
        );
    }
    let _ = writeln!(s, "{:<13}{}", "Magnet:", magnet(m));
    s
}

/// `--info --json`: the same facts as one JSON object.
pub fn info_json(m: &Metainfo) -> serde_json::Value {
    let i = &m.info;
    let l = &i.lengths;
    let files: Vec<_> = i
        .files
        .iter()
        .enumerate()
        .map(|(idx, f)| {
            json!({
                "index": idx + 1,
                "path": i.file_path(idx).map(|p| p.display().to_string()),
                "length": f.length,
                "offset": f.offset,
                "pad": f.attr.pad,
                "executable": f.attr.executable,
            })
        })
        .collect();
    json!({
        "name": i.name,
        "info_hash": m.info_hash.to_hex(),
        "total_size": l.total(),
        "piece_length": l.piece_length(),
        "piece_count": l.piece_count(),
        "last_piece_length": l.last_piece_len(),
        "private": i.private,
        "multi_file": i.multi_file,
        "hybrid": i.hybrid,
        "info_hash_v2": m.info_hash_v2.map(|h| h.to_hex()),
        "comment": m.comment,
        "created_by": m.created_by,
        "creation_date": m.creation_date,
        "trackers": m.tiers(),
        "web_seeds": m.url_list,
        "files": files,
        "magnet": magnet(m),
    })
}

/// One line per tracker for `--announce-only`, then a summary line; and whether any tracker answered.
pub fn probe_lines(outcomes: &[ProbeOutcome]) -> (String, bool) {
    let urls: Vec<String> = outcomes.iter().map(|o| sanitize(&o.url)).collect();
    let width = urls.iter().map(|u| u.chars().count()).max().unwrap_or(0);
    let mut s = String::new();
    let mut answered = 0;
    for (o, url) in outcomes.iter().zip(&urls) {
        let head = format!("tier {:<2} {url:<width$}", o.tier + 1);
        let ms = o.latency.as_millis();
        match &o.result {
            Ok(r) => {
                answered += 1;
                let opt = |v: Option<u32>| v.map_or("?".to_string(), |v| v.to_string());
                let _ = write!(
                    s,
                    "{head}  ok      {ms:>5} ms  seeders {}  leechers {}  peers {}  interval {}",
                    opt(r.seeders),
                    opt(r.leechers),
                    r.peers.len(),
                    r.interval.map_or("?".to_string(), |v| format!("{v}s")),
                );
                if let Some(w) = &r.warning {
                    let _ = write!(s, "  warning: {w}");
                }
                if let Some(e) = &o.stop_error {
                    let _ = write!(s, "  (stopped announce failed: {e})");
                }
                s.push('\n');
            }
            Err(e) => {
                let _ = writeln!(s, "{head}  failed  {ms:>5} ms  {e}");
            }
        }
    }
    let _ = writeln!(s, "{answered} of {} trackers answered", outcomes.len());
    (s, answered > 0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tracker::{AnnounceResponse, TrackerError};

    #[test]
    fn sizes_and_numbers() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1 KiB");
        assert_eq!(human_size(524_288), "512 KiB");
        assert_eq!(human_size(1536), "1.50 KiB");
        assert_eq!(human_size(441_396_773), "420.95 MiB");
        assert_eq!(human_size(u64::MAX), "16 EiB");
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(441_396_773), "441,396,773");
    }

    #[test]
    fn v2_lines_of_info() {
        let hybrid =
            Metainfo::from_bytes(include_bytes!("../tests/data/v2/hybrid-multi.torrent")).unwrap();
        let text = info_text(&hybrid);
        assert!(text.contains("\nHash (v2):   bc79259364202163"), "{text}");
        assert!(text.contains("\nFormat:      BitTorrent v1+v2 hybrid (v1 used)\n"));
        let json = info_json(&hybrid);
        assert_eq!(json["info_hash_v2"].as_str().map(str::len), Some(64));
        let v2 =
            Metainfo::from_bytes_any_version(include_bytes!("../tests/data/v2/v2-single.torrent"))
                .unwrap();
        assert!(info_text(&v2).contains("\nFormat:      BitTorrent v2 only\n"));
        let (v1, _) = crate::metainfo::testkit::multi_file("t", &[("a", vec![1; 9])], 16384);
        let text = info_text(&v1);
        assert!(!text.contains("v2") && !text.contains("Format:"), "{text}");
        assert_eq!(info_json(&v1)["info_hash_v2"], serde_json::Value::Null);
        // A hybrid whose v2 part is broken says so.
        let mut t = crate::bencode::decode(
            include_bytes!("../tests/data/v2/hybrid-multi.torrent"),
            crate::bencode::Limits::TORRENT,
        )
        .unwrap()
        .root()
        .to_value();
        t.remove("piece layers");
        t.insert("piece layers", crate::bencode::Value::dict([]));
        let text = info_text(&Metainfo::from_bytes(&t.encode()).unwrap());
        assert!(text.contains("v2 part set aside (invalid torrent: the piece layer of `a.bin` is missing): v1 used"), "{text}");
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(1_727_283_247), "2024-09-25 16:54:07 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_date(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn probe_report() {
        let ok = ProbeOutcome {
            tier: 0,
            url: "http://a/announce".into(),
            latency: Duration::from_millis(12),
            result: Ok(AnnounceResponse {
                interval: Some(1800),
                seeders: Some(1),
                leechers: Some(2),
                peers: vec!["127.0.0.1:1".parse().unwrap()],
                ..Default::default()
            }),
            stop_error: None,
        };
        let bad = ProbeOutcome {
            tier: 1,
            url: "udp://b:1".into(),
            latency: Duration::from_millis(3),
            result: Err(TrackerError::Io("connection refused".into())),
            stop_error: None,
        };
        let (text, any) = probe_lines(&[ok, bad]);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "tier 1  http://a/announce  ok         12 ms  seeders 1  leechers 2  peers 1  interval 1800s");
        assert_eq!(
            lines[1],
            "tier 2  udp://b:1          failed      3 ms  connection refused"
        );
        assert_eq!(lines[2], "1 of 2 trackers answered");
        assert!(any);
        assert_eq!(
            probe_lines(&[]),
            ("0 of 0 trackers answered\n".to_string(), false)
        );
        // A URL too long to pad (format widths stop at 65,535) is shortened first; no panic.
        let long = ProbeOutcome {
            tier: 0,
            url: format!("http://{}\x1b[2J", "x".repeat(70_000)),
            latency: Duration::ZERO,
            result: Err(TrackerError::Timeout(Duration::from_secs(1))),
            stop_error: None,
        };
        let (text, _) = probe_lines(&[long]);
        assert!(
            text.len() < 1000 && !text.contains('\x1b'),
            "{}",
            text.len()
        );
    }
}
