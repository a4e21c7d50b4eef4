//! The state one torrent shares between its tasks, split by concern: [`pieces`] (picker, piece
//! buffers), [`peers`] (connected peers, slots, strikes and bans, tallies), [`discovery`] (the
//! address pool, tracker status) and [`web`] (web seeds). All of it sits behind one
//! `std::sync::Mutex` in [`super::Ctx`], held only for short synchronous steps and never across
//! `.await`; its fields are private, and every change goes through a method here. Byte counters
//! live outside the lock ([`super::counters`]). The invariants are in DESIGN.md ("Torrent state").

pub mod discovery;
pub mod peers;
pub mod pieces;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use rand::rngs::StdRng;
use tokio::sync::mpsc::UnboundedSender;

use super::counters::Counters;
use super::pool::{PeerSource, Pool};
use crate::bitfield::Bitfield;
use crate::picker::{PeerKey, Picker};
use crate::types::{BlockRef, PieceIndex};
pub use discovery::TrackerStatus;
pub use peers::{PeerTally, MAX_STRIKES};
pub use pieces::Complete;
use pieces::{Pieces, Received};
pub use web::WebSeed;

/// What the torrent tells a peer task.
#[derive(Debug, Clone)]
pub enum Command {
    /// We verified this piece.
    Have(u32),
    /// Another peer delivered this block first (endgame).
    Cancel(BlockRef),
    /// Close the connection (ban, shutdown).
    Disconnect(&'static str),
    /// Start uploading to the peer.
    Unchoke,
    /// Stop uploading to the peer.
    Choke,
    /// Send this BEP 52 `hash request` (the leaf hashes of a failed piece: [`super::blame`]).
    HashRequest(crate::wire::hashes::HashRequest),
}

/// A connected peer, as the torrent knows it.
pub struct PeerEntry {
    /// Where we reached it (or where it came from).
    pub addr: SocketAddr,
    /// Its peer id.
    pub id: [u8; 20],
    /// Its mailbox.
    pub tx: UnboundedSender<Command>,
    /// What its task last reported, for the choker.
    pub stats: PeerStats,
    /// Whether we unchoke it.
    pub unchoked: bool,
    /// Where it accepts connections, as told to others by PEX: the address we dialled, or for an
    /// incoming peer its IP and the port of its extended handshake (`None` until known).
    pub listen: Option<SocketAddr>,
    /// It has every piece (told to others by PEX as a seed).
    pub seed: bool,
    /// The connection went through MSE/PE (told to others by PEX as supporting encryption).
    pub mse: bool,
    /// The connection runs over uTP (told to others by PEX as supporting uTP).
    pub utp: bool,
}

/// A peer's figures, refreshed by its task every second.
#[derive(Debug, Clone, Default)]
pub struct PeerStats {
    /// It is interested in our data.
    pub interested: bool,
    /// Payload bytes it sent us in answer to our requests since it connected.
    pub downloaded: u64,
    /// Payload bytes we sent it since it connected.
    pub uploaded: u64,
    /// It sent nothing for a while although we asked.
    pub snubbed: bool,
    /// Connected less than a minute ago.
    pub new: bool,
    /// It chokes us.
    pub choking: bool,
}

/// Where a block came from: a BitTorrent peer or a web seed (by its index in [`Torrent::web`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A connected peer.
    Peer(SocketAddr),
    /// A web seed (BEP 19).
    Web(usize),
}

/// Why a handshaken peer is not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its address or peer id is banned.
    Banned,
    /// A connection with the same peer id is already up.
    Duplicate,
}

/// The torrent's shared, lock-protected state.
pub struct Torrent {
    pieces: Pieces,
    peers: peers::Peers,
    discovery: discovery::Discovery,
    web: Vec<WebSeed>,
    counters: Arc<Counters>,
}

impl Torrent {
    /// State around a picker; `counters` are the torrent's (shared with [`super::Ctx`]).
    pub fn new(picker: Picker, rng: StdRng, counters: Arc<Counters>) -> Torrent {
        Torrent {
            pieces: Pieces::new(picker, rng),
            peers: peers::Peers::new(),
            discovery: Default::default(),
            web: Vec::new(),
            counters,
        }
    }

    // --- pieces ---

    /// The picker, to read (piece states, what is left, completion).
    pub fn picker(&self) -> &Picker {
        self.pieces.picker()
    }

    /// Reserves up to `want` blocks for peer `key`, which has `has`.
    pub fn pick(&mut self, key: PeerKey, has: &Bitfield, want: usize) -> Vec<BlockRef> {
        self.pieces.pick(key, has, want)
    }

    /// Reserves a run of up to `max` consecutive blocks for web seed `mirror` (its `has`).
    pub fn pick_web(&mut self, key: PeerKey, mirror: usize, max: usize) -> Vec<BlockRef> {
        let Some(w) = self.web.get(mirror) else {
            return Vec::new();
        };
        self.pieces.pick_run(key, w.has(), max)
    }

    /// Gives `blocks` reserved by `key` back to the picker.
    pub fn unrequest(&mut self, key: PeerKey, blocks: &[BlockRef]) {
        self.pieces.unrequest(key, blocks);
    }

    /// A peer announced `piece` (availability).
    pub fn add_have(&mut self, piece: PieceIndex) {
        self.pieces.add_have(piece);
    }

    /// A key for a picker client that is not a registered peer (a web seed connection).
    pub fn new_key(&mut self) -> PeerKey {
        self.peers.new_key()
    }

    /// Takes back a checked piece's buffer for reuse (see [`Complete::data`]).
    pub fn recycle(&mut self, data: Vec<u8>) {
        self.pieces.recycle(data);
    }

    /// Stores a received block; returns a complete piece when this was its last block.
    pub fn block(
        &mut self,
        key: PeerKey,
        source: Source,
        block: BlockRef,
        data: &[u8],
        piece_len: u32,
    ) -> Option<Complete> {
        self.counters.fetched(data.len() as u64);
        match self.pieces.receive(key, source, block, data, piece_len) {
            Received::Useless => {
                self.counters.wasted(data.len() as u64);
                None
            }
            Received::Stored { cancel, complete } => {
                for other in cancel {
                    if let Some(p) = self.peers.get(other) {
                        let _ = p.tx.send(Command::Cancel(block));
                    }
                }
                complete
            }
        }
    }

    /// The hash check of `piece` finished. Good: tell every peer that lacks it. Bad: blame the
    /// contributors; returns the addresses banned (or web seeds dropped) just now.
    ///
    /// A web seed that alone sent a bad piece is not asked for that piece again, and takes a strike
    /// only once another source delivers the piece intact. The Internet Archive rewrites files such
    /// as `ITEM_meta.xml` after making the torrent, so every mirror then serves the same "bad" piece:
    /// that is not a broken mirror, and dropping all of them for it would stall the whole download.
    pub fn verified(
        &mut self,
        piece: PieceIndex,
        ok: bool,
        len: u32,
        contributors: &[(Source, u64)],
    ) -> Vec<Source> {
        self.pieces.verified(piece, ok);
        if ok {
            self.counters.verified(u64::from(len));
            for &(source, n) in contributors {
                self.credit(source, n);
            }
            // Each task knows whether its peer already has the piece and stays quiet if so.
            for (_, p) in self.peers.iter() {
                let _ = p.tx.send(Command::Have(piece.get()));
            }
            // The mirrors that lack the piece in `has` are those that alone sent it wrong.
            let mut dropped = Vec::new();
            for (i, w) in self.web.iter_mut().enumerate() {
                if !w.has().get(piece.get()) {
                    let why = format!("sent piece {} wrong", piece.get());
                    if w.health_mut().proven(&why, crate::session::now()) {
                        dropped.push(Source::Web(i));
                    }
                }
            }
            return dropped;
        }
        self.counters.wasted(u64::from(len));
        // Blame only a sole contributor. A piece that failed with several is fetched again from one
        // peer only (the picker's single-source retry), so the next failure names the culprit
        // exactly and an honest peer that shared a bad piece is never banned for it.
        match contributors {
            [(Source::Peer(addr), _)] if self.peers.strike(*addr) => vec![Source::Peer(*addr)],
            [(Source::Web(i), _)] => {
                let Some(w) = self.web.get_mut(*i) else {
                    return Vec::new();
                };
                let why = format!("piece {} failed its hash check", piece.get());
                if w.withhold(piece.get()) && w.health_mut().suspect(&why) {
                    vec![Source::Web(*i)]
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }

    /// A strike against `addr` for a block that failed its Merkle check ([`super::blame`]); `true`
    /// when this one bans it (and its connection is told to close).
    pub fn strike(&mut self, addr: SocketAddr) -> bool {
        self.peers.strike(addr)
    }

    /// Strikes against `addr` so far.
    pub fn strikes(&self, addr: &SocketAddr) -> u32 {
        self.peers.strikes(addr)
    }

    /// Useful bytes from `source`, counted once their piece is verified.
    fn credit(&mut self, source: Source, n: u64) {
        match source {
            Source::Peer(addr) => {
                self.peers.tally(addr).bytes += n;
                self.counters.from_peers(n);
            }
            Source::Web(i) => {
                if let Some(w) = self.web.get_mut(i) {
                    w.credit(n);
                }
                self.counters.from_web(n);
            }
        }
    }

    /// The bytes held in partial piece buffers.
    pub fn buffered(&self) -> usize {
        self.pieces.buffered()
    }

    // --- peers ---

    /// Connection slots in use under `--max-peers`: connected peers, dials in progress and incoming
    /// connections still handshaking.
    pub fn busy(&self) -> usize {
        self.peers.slots() + self.discovery.pool.connecting()
    }

    /// An incoming connection takes a slot while it handshakes (see [`super::link::Incoming`]).
    pub fn claim_incoming(&mut self) {
        self.peers.claim_incoming();
    }

    /// An incoming connection's slot is given back (registered or turned away).
    pub fn settle_incoming(&mut self) {
        self.peers.settle_incoming();
    }

    /// Admits a peer whose handshake is done: refused if banned or already connected; else
    /// recorded (pool, tally with its client and source) and registered. Returns its key, a
    /// snapshot of what we have (its task then gets a [`Command::Have`] for every piece verified
    /// later, exactly once), and where we heard of it.
    pub fn admit(
        &mut self,
        entry: PeerEntry,
        client: &str,
        outgoing: bool,
    ) -> Result<(PeerKey, Bitfield, Option<PeerSource>), Refused> {
        let addr = entry.addr;
        if self.peers.is_banned(&addr, Some(&entry.id)) {
            return Err(Refused::Banned);
        }
        if self.peers.has_id(&entry.id) {
            return Err(Refused::Duplicate);
        }
        self.discovery.pool.connected(addr);
        let source = if outgoing {
            self.discovery.pool.source(&addr)
        } else {
            Some(PeerSource::Incoming)
        };
        let tally = self.peers.tally(addr);
        tally.client = client.to_string();
        tally.source = source;
        let (key, have) = self.register(entry);
        Ok((key, have, source))
    }

    /// Registers a connected peer; returns its key and a snapshot of what we have.
    pub fn register(&mut self, entry: PeerEntry) -> (PeerKey, Bitfield) {
        let key = self.peers.insert(entry);
        (key, self.pieces.picker().have().clone())
    }

    /// A peer task ended: forget it and what it had; `pending` blocks go back to the pool.
    pub fn unregister(&mut self, key: PeerKey, has: &Bitfield, pending: &[BlockRef]) {
        self.pieces.unrequest(key, pending);
        self.pieces.remove_peer(has);
        self.peers.remove(key);
    }

    /// A peer's bitfield or first `have`s, counted in availability.
    pub fn add_peer_pieces(&mut self, has: &Bitfield) {
        self.pieces.add_peer(has);
    }

    /// Whether `addr` (or `id`) is banned.
    pub fn is_banned(&self, addr: &SocketAddr, id: Option<&[u8; 20]>) -> bool {
        self.peers.is_banned(addr, id)
    }

    /// Banned addresses, with the reason.
    pub fn banned(&self) -> impl Iterator<Item = (&SocketAddr, &String)> {
        self.peers.banned().iter()
    }

    /// Per address: client, useful bytes, source.
    pub fn tallies(&self) -> impl Iterator<Item = (&SocketAddr, &PeerTally)> {
        self.peers.tallies().iter()
    }

    /// The connected peer `key`.
    pub fn peer(&self, key: PeerKey) -> Option<&PeerEntry> {
        self.peers.get(key)
    }

    /// Every connected peer.
    pub fn peers(&self) -> impl Iterator<Item = &PeerEntry> {
        self.peers.iter().map(|(_, p)| p)
    }

    /// Connected peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Peers ever connected (handshake done) this session.
    pub fn peers_ever(&self) -> usize {
        self.peers.ever()
    }

    /// A peer task's periodic report: its figures for the choker, its seed flag for PEX, and the
    /// bytes it uploaded since the last one.
    pub fn report(&mut self, key: PeerKey, stats: PeerStats, seed: bool, uploaded: u64) {
        self.counters.uploaded(uploaded);
        self.peers.set_stats(key, stats, seed);
    }

    /// An incoming peer's listening address, learned from its extended handshake (kept if known).
    pub fn set_listen(&mut self, key: PeerKey, addr: SocketAddr) {
        if let Some(e) = self.peers.get_mut(key) {
            e.listen.get_or_insert(addr);
        }
    }

    /// Peers we upload to.
    pub fn unchoked(&self) -> usize {
        self.peers.iter().filter(|(_, p)| p.unchoked).count()
    }

    /// One choker round: decides whom to unchoke and tells the peers whose state changes. Once
    /// the download (of the selection) is complete we seed: round robin by our upload to them.
    pub fn choke_round(&mut self, choker: &mut super::choker::Choker) {
        use super::choker::Mode;
        let seeding = self.pieces.picker().is_complete();
        let mode = if seeding {
            let piece_len = self.pieces.picker().lengths().piece_length();
            Mode::Seeding {
                piece_len: u64::from(piece_len),
            }
        } else {
            Mode::Downloading
        };
        let candidates: Vec<super::choker::Candidate> = self
            .peers
            .iter()
            .map(|(k, p)| super::choker::Candidate {
                key: *k,
                interested: p.stats.interested,
                bytes: if seeding {
                    p.stats.uploaded
                } else {
                    p.stats.downloaded
                },
                snubbed: !seeding && p.stats.snubbed,
                new: p.stats.new,
            })
            .collect();
        let now = crate::session::now();
        let unchoke = choker.round(&candidates, mode, now, self.pieces.rng());
        for (k, p) in self.peers.iter_mut() {
            let want = unchoke.contains(k);
            if want != p.unchoked {
                p.unchoked = want;
                let _ = p.tx.send(if want {
                    Command::Unchoke
                } else {
                    Command::Choke
                });
            }
        }
    }

    /// The peers to tell others of (BEP 11): every connected one whose listening address is known,
    /// with its flags.
    pub fn pex_peers(&self) -> Vec<(SocketAddr, crate::wire::pex::PexFlags)> {
        use crate::wire::pex::PexFlags;
        self.peers()
            .filter_map(|p| {
                let mut flags = PexFlags::NONE;
                if p.seed {
                    flags |= PexFlags::SEED;
                }
                if p.mse {
                    flags |= PexFlags::ENCRYPTION;
                }
                if p.utp {
                    flags |= PexFlags::UTP;
                }
                if p.listen == Some(p.addr) {
                    flags |= PexFlags::REACHABLE;
                }
                p.listen.map(|a| (a, flags))
            })
            .collect()
    }

    // --- discovery ---

    /// The addresses to dial, to read.
    pub fn pool(&self) -> &Pool {
        &self.discovery.pool
    }

    /// The addresses to dial, to add to or take from (its own methods keep its rules).
    pub fn pool_mut(&mut self) -> &mut Pool {
        &mut self.discovery.pool
    }

    /// How the trackers are doing.
    pub fn trackers(&self) -> &TrackerStatus {
        &self.discovery.trackers
    }

    /// The number of tracker tiers announced to.
    pub fn set_tracker_tiers(&mut self, n: usize) {
        self.discovery.set_tiers(n);
    }

    /// A tracker answered with `peers` (`v2`: to a hybrid's announce under its truncated v2
    /// info-hash); returns how many were new to the pool.
    pub fn tracker_answered(&mut self, peers: &[SocketAddr], v2: bool) -> usize {
        self.discovery.answered(peers, v2, crate::session::now())
    }

    /// The tracker at `url` failed, for `why`.
    pub fn tracker_failed(&mut self, url: &str, why: String) {
        self.discovery.failed(url, why);
    }

    /// A tier finished its first round of attempts.
    pub fn tracker_tier_tried(&mut self) {
        self.discovery.tier_tried();
    }

    /// A DHT lookup found `peers` (`first`: the torrent's first lookup; `v2`: a lookup of a
    /// hybrid's truncated v2 id, whose peers are dialled with it); returns how many were new.
    pub fn dht_result(&mut self, peers: &[SocketAddr], first: bool, v2: bool) -> usize {
        self.discovery
            .dht_result(peers, first, v2, crate::session::now())
    }

    // --- web seeds ---

    /// The web seeds, indexed by [`Source::Web`].
    pub fn web(&self) -> &[WebSeed] {
        &self.web
    }

    /// Adds a web seed; returns its index.
    pub fn add_web_seed(&mut self, seed: WebSeed) -> usize {
        self.web.push(seed);
        self.web.len() - 1
    }

    /// The byte counters now (tests read them through the torrent they built).
    #[cfg(test)]
    pub fn totals(&self) -> super::counters::Totals {
        self.counters.totals()
    }

    /// Web seed `i`, to record a request's result.
    pub fn web_seed_mut(&mut self, i: usize) -> Option<&mut WebSeed> {
        self.web.get_mut(i)
    }
}

#[cfg(test)]
mod tests;
