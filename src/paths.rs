//! Where pixtorrent keeps its state between runs: `$XDG_STATE_HOME/pixtorrent/`, else
//! `~/.local/state/pixtorrent/` (the DHT's table, the resume files).

use std::path::PathBuf;

/// The state directory; `None` when neither `XDG_STATE_HOME` nor `HOME` is set.
pub fn state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })?;
    Some(base.join("pixtorrent"))
}
