//! Web seeds (BEP 19) as the torrent knows them: URL, health (backoff, strikes, dropped), useful
//! bytes, and the pieces we still ask each one for.

use crate::bitfield::Bitfield;
use crate::webseed::health::Health;

/// A web seed as the torrent knows it.
#[derive(Debug, Clone)]
pub struct WebSeed {
    url: String,
    health: Health,
    bytes: u64,
    has: Bitfield,
}

impl WebSeed {
    /// A mirror at `url`, asked for every one of `pieces` pieces.
    pub fn new(url: String, health: Health, pieces: u32) -> WebSeed {
        WebSeed {
            url,
            health,
            bytes: 0,
            has: Bitfield::full(pieces),
        }
    }

    /// The URL as given (the torrent's `url-list` or `--web-seed`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Backoff, strikes, dropped.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Its health, to record a request's result.
    pub fn health_mut(&mut self) -> &mut Health {
        &mut self.health
    }

    /// Useful block bytes it sent (verified).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The pieces we ask it for: all, less those it alone sent wrong (the picker's "has" for it;
    /// once another source proves such a piece, the mirror takes a strike for it).
    pub fn has(&self) -> &Bitfield {
        &self.has
    }

    /// Still in use.
    pub fn live(&self) -> bool {
        self.health.dropped().is_none()
    }

    pub(super) fn credit(&mut self, n: u64) {
        self.bytes += n;
    }

    pub(super) fn withhold(&mut self, piece: u32) -> bool {
        self.has.clear(piece)
    }
}
