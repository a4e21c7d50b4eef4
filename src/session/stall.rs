//! Why a download is stuck, said in one short line: what the trackers, web seeds and peers are doing
//! when no byte has arrived for a while. Pure: the caller gathers [`Facts`] from the torrent state.

/// What the torrent state says while nothing arrives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Trackers that failed, with their last error, and whether any tracker ever answered.
    pub tracker_errors: Vec<String>,
    /// A tracker answered (at least once).
    pub tracker_ok: bool,
    /// Web seeds in use, and the last errors of those failing (backing off or dropped).
    pub web_seeds: usize,
    /// Last errors of the failing web seeds.
    pub web_errors: Vec<String>,
    /// Missing pieces every live web seed withholds (it sent them wrong), with at least one live.
    pub web_bad_pieces: u32,
    /// Missing pieces no live web seed can send (every one withholds it, or none is left).
    pub web_exhausted: u32,
    /// Connected peers.
    pub peers: usize,
    /// Connected peers choking us.
    pub choking: usize,
    /// Addresses still to dial or being dialled.
    pub untried: usize,
    /// Missing pieces.
    pub missing: u32,
    /// Missing pieces no connected peer has.
    pub unavailable: u32,
    /// The file of the first such piece.
    pub unavailable_file: Option<String>,
}

/// The short kind of an error message: `name not resolved`, `connection refused`, `no answer`, or
/// the message itself, cut.
pub fn kind(error: &str) -> String {
    let e = error.to_ascii_lowercase();
    if e.contains("lookup address") || e.contains("not known") || e.contains("cannot resolve") {
        "name not resolved".into()
    } else if e.contains("refused") {
        "connection refused".into()
    } else if e.contains("unreachable") {
        "network unreachable".into()
    } else if e.contains("timed out") || e.contains("no answer") {
        "no answer".into()
    } else {
        crate::text::line(error).chars().take(40).collect()
    }
}

/// The kinds of `errors`, most common first, joined (`name not resolved`, or
/// `name not resolved, connection refused`).
fn kinds(errors: &[String]) -> String {
    let mut counted: Vec<(String, usize)> = Vec::new();
    for k in errors.iter().map(|e| kind(e)) {
        match counted.iter_mut().find(|(c, _)| *c == k) {
            Some(c) => c.1 += 1,
            None => counted.push((k, 1)),
        }
    }
    counted.sort_by_key(|c| std::cmp::Reverse(c.1));
    counted
        .into_iter()
        .map(|c| c.0)
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One line saying why nothing arrives.
pub fn reason(f: &Facts) -> String {
    if f.peers > 0 {
        if f.choking == f.peers {
            return format!("{}, all choking us", plural(f.peers, "peer", "peers"));
        }
        if f.unavailable == f.missing && f.missing > 0 {
            let file = f
                .unavailable_file
                .as_ref()
                .map(|n| format!(" (file {})", crate::text::line(n)))
                .unwrap_or_default();
            return format!(
                "{}, none has the {} missing {}{file}",
                plural(f.peers, "peer", "peers"),
                f.missing,
                if f.missing == 1 { "piece" } else { "pieces" }
            );
        }
    }
    if f.web_bad_pieces > 0 && f.web_bad_pieces >= f.missing && f.unavailable == f.missing {
        let file = f
            .unavailable_file
            .as_ref()
            .map(|n| format!(" of {}", crate::text::line(n)))
            .unwrap_or_default();
        return format!("missing pieces{file} differ on every mirror and no peer has them");
    }
    let peers = match f.peers {
        0 if f.tracker_ok => "0 peers".to_string(),
        0 => "no peers".to_string(),
        n => format!(
            "{} connected, {} choking us",
            plural(n, "peer", "peers"),
            f.choking
        ),
    };
    let mut parts = Vec::new();
    if f.tracker_ok {
        parts.push(format!("tracker ok, {peers}"));
    } else if !f.tracker_errors.is_empty() {
        parts.push(format!(
            "{} failing ({})",
            plural(f.tracker_errors.len(), "tracker", "trackers"),
            kinds(&f.tracker_errors)
        ));
    }
    if !f.web_errors.is_empty() {
        parts.push(format!(
            "{} failing ({})",
            plural(f.web_errors.len(), "web seed", "web seeds"),
            kinds(&f.web_errors)
        ));
    }
    if !f.tracker_ok {
        parts.push(peers);
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns() -> String {
        "connection failed: failed to lookup address information: Name or service not known".into()
    }

    #[test]
    fn no_network_anywhere() {
        let f = Facts {
            tracker_errors: vec![
                dns(),
                "cannot resolve x.invalid:6969: Name or service not known".into(),
            ],
            web_seeds: 3,
            web_errors: vec![dns(), dns(), dns()],
            missing: 10,
            ..Facts::default()
        };
        assert_eq!(
            reason(&f),
            "2 trackers failing (name not resolved); 3 web seeds failing (name not resolved); no peers"
        );
    }

    #[test]
    fn a_tracker_that_answers_with_nobody() {
        let f = Facts {
            tracker_ok: true,
            missing: 10,
            ..Facts::default()
        };
        assert_eq!(reason(&f), "tracker ok, 0 peers");
    }

    #[test]
    fn peers_that_all_choke_us() {
        let f = Facts {
            tracker_ok: true,
            peers: 5,
            choking: 5,
            missing: 10,
            unavailable: 2,
            ..Facts::default()
        };
        assert_eq!(reason(&f), "5 peers, all choking us");
    }

    #[test]
    fn peers_without_the_missing_pieces() {
        let f = Facts {
            tracker_ok: true,
            peers: 5,
            choking: 1,
            missing: 3,
            unavailable: 3,
            unavailable_file: Some("Content/big.mp4".into()),
            ..Facts::default()
        };
        assert_eq!(
            reason(&f),
            "5 peers, none has the 3 missing pieces (file Content/big.mp4)"
        );
    }

    #[test]
    fn a_file_that_changed_on_every_mirror() {
        let f = Facts {
            web_seeds: 3,
            web_bad_pieces: 1,
            missing: 1,
            unavailable: 1,
            unavailable_file: Some("BigBuckBunny_124_meta.xml".into()),
            ..Facts::default()
        };
        assert_eq!(
            reason(&f),
            "missing pieces of BigBuckBunny_124_meta.xml differ on every mirror and no peer has them"
        );
    }

    #[test]
    fn mixed_errors_and_some_peers() {
        let f = Facts {
            tracker_errors: vec![
                "udp://a: no answer in time".into(),
                "Connection refused".into(),
                "refused".into(),
            ],
            peers: 2,
            choking: 1,
            missing: 4,
            unavailable: 1,
            ..Facts::default()
        };
        assert_eq!(
            reason(&f),
            "3 trackers failing (connection refused, no answer); 2 peers connected, 1 choking us"
        );
    }

    #[test]
    fn error_kinds() {
        assert_eq!(kind(&dns()), "name not resolved");
        assert_eq!(
            kind("connection failed: Connection refused (os error 111)"),
            "connection refused"
        );
        assert_eq!(kind("Network is unreachable"), "network unreachable");
        assert_eq!(kind("no answer in time"), "no answer");
        assert_eq!(kind("HTTP 404\nNot Found"), "HTTP 404?Not Found");
    }
}
