//! The state one torrent shares between its peer tasks: the picker, partial piece buffers, who gave
//! what, strikes and bans, byte counters. All of it sits behind one `std::sync::Mutex` in
//! [`super::Ctx`], held only for short synchronous steps and never across `.await`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use rand::rngs::StdRng;
use tokio::sync::mpsc::UnboundedSender;

use crate::bitfield::Bitfield;
use crate::picker::{PeerKey, Picker, Receipt};
use crate::types::{BlockRef, PieceIndex};
use crate::webseed::health::Health;

/// A peer that alone sent this many pieces that failed their hash check is banned for the session.
pub const MAX_STRIKES: u32 = 3;

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
}

impl Torrent {
    /// The peers to tell others of (BEP 11): every connected one whose listening address is known,
    /// with its flags.
    pub fn pex_peers(&self) -> Vec<(SocketAddr, crate::wire::pex::PexFlags)> {
        use crate::wire::pex::PexFlags;
        self.peers
            .values()
            .filter_map(|p| {
                let mut flags = PexFlags::NONE;
                if p.seed {
                    flags |= PexFlags::SEED;
                }
                if p.listen == Some(p.addr) {
                    flags |= PexFlags::REACHABLE;
                }
                p.listen.map(|a| (a, flags))
            })
            .collect()
    }
}

/// A peer's figures, refreshed by its task every second.
#[derive(Debug, Clone, Default)]
pub struct PeerStats {
    /// It is interested in our data.
    pub interested: bool,
    /// Its upload to us, bytes/s.
    pub down_rate: f64,
    /// Our upload to it, bytes/s.
    pub up_rate: f64,
    /// It sent nothing for a while although we asked.
    pub snubbed: bool,
    /// Connected less than a minute ago.
    pub new: bool,
}

/// Where a block came from: a BitTorrent peer or a web seed (by its index in [`Torrent::web`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A connected peer.
    Peer(SocketAddr),
    /// A web seed (BEP 19).
    Web(usize),
}

/// A web seed as the torrent knows it.
#[derive(Debug, Clone)]
pub struct WebSeed {
    /// The URL as given (the torrent's `url-list` or `--web-seed`).
    pub url: String,
    /// Backoff, strikes, dropped.
    pub health: Health,
    /// Useful block bytes it sent.
    pub bytes: u64,
    /// The pieces we ask it for: all, less those it alone sent wrong (the picker's "has" for it;
    /// once another source proves such a piece, the mirror takes a strike for it).
    pub has: Bitfield,
}

/// A piece being assembled in memory.
struct PieceBuf {
    data: Vec<u8>,
    /// Sources that delivered at least one block of it, with their bytes.
    contributors: Vec<(Source, u64)>,
}

/// A complete piece ready to be hashed.
pub struct Complete {
    /// The piece.
    pub piece: PieceIndex,
    /// Its bytes.
    pub data: Vec<u8>,
    /// Who delivered them and how many bytes each: credited if the hash matches, blamed if not.
    pub contributors: Vec<(Source, u64)>,
}

/// Totals for one peer address over the session.
#[derive(Debug, Clone, Default)]
pub struct PeerTally {
    /// Client name from its peer id.
    pub client: String,
    /// Useful block bytes it sent.
    pub bytes: u64,
    /// Where we heard of it (incoming: it found us).
    pub source: Option<super::pool::PeerSource>,
}

/// The torrent's shared, lock-protected state.
pub struct Torrent {
    /// Reservations and piece states.
    pub picker: Picker,
    buffers: HashMap<u32, PieceBuf>,
    /// Connected peers.
    pub peers: HashMap<PeerKey, PeerEntry>,
    /// Incoming connections still handshaking; they hold a `--max-peers` slot (see [`Torrent::busy`]).
    pub accepting: usize,
    next_key: PeerKey,
    strikes: HashMap<SocketAddr, u32>,
    /// Banned addresses, with the reason.
    pub banned: HashMap<SocketAddr, String>,
    /// Banned peer ids (a banned peer reconnecting from another port).
    pub banned_ids: HashSet<[u8; 20]>,
    /// Block payload bytes received this run (useful or not).
    pub fetched: u64,
    /// Bytes received that we already had or could not use.
    pub wasted: u64,
    /// Bytes verified this run (for the tracker's `downloaded`).
    pub verified_bytes: u64,
    /// Bytes uploaded this run.
    pub uploaded: u64,
    /// Per address: client and useful bytes.
    pub tallies: HashMap<SocketAddr, PeerTally>,
    /// Web seeds, indexed by [`Source::Web`].
    pub web: Vec<WebSeed>,
    /// Useful bytes from web seeds.
    pub from_web: u64,
    /// Useful bytes from peers.
    pub from_peers: u64,
    /// Randomness for the picker.
    pub rng: StdRng,
    /// Peer addresses to dial.
    pub pool: super::pool::Pool,
    /// How the trackers are doing.
    pub trackers: TrackerStatus,
}

/// What the announcers report, for the "no tracker and no peer" check and the summary.
#[derive(Debug, Default)]
pub struct TrackerStatus {
    /// Tiers announced to.
    pub tiers: usize,
    /// Tiers that finished their first round of attempts.
    pub tiers_tried: usize,
    /// Announces answered.
    pub answered: usize,
    /// The last tracker error, for the message.
    pub last_error: Option<String>,
    /// Peers ever connected (handshake done).
    pub peers_seen: usize,
}

impl Torrent {
    /// State around a picker.
    pub fn new(picker: Picker, rng: StdRng) -> Torrent {
        Torrent {
            picker,
            buffers: HashMap::new(),
            peers: HashMap::new(),
            next_key: 1,
            strikes: HashMap::new(),
            accepting: 0,
            banned: HashMap::new(),
            banned_ids: HashSet::new(),
            fetched: 0,
            wasted: 0,
            verified_bytes: 0,
            uploaded: 0,
            tallies: HashMap::new(),
            web: Vec::new(),
            from_web: 0,
            from_peers: 0,
            rng,
            pool: Default::default(),
            trackers: Default::default(),
        }
    }

    /// Connection slots in use under `--max-peers`: connected peers, dials in progress and incoming
    /// connections still handshaking.
    pub fn busy(&self) -> usize {
        self.peers.len() + self.pool.connecting() + self.accepting
    }

    /// Registers a connected peer; returns its key and a snapshot of what we have (its task then
    /// receives a [`Command::Have`] for every piece verified later, exactly once).
    pub fn register(&mut self, entry: PeerEntry) -> (PeerKey, Bitfield) {
        let key = self.next_key;
        self.next_key += 1;
        self.peers.insert(key, entry);
        (key, self.picker.have().clone())
    }

    /// A key for a picker client that is not a registered peer (a web seed connection).
    pub fn new_key(&mut self) -> PeerKey {
        let key = self.next_key;
        self.next_key += 1;
        key
    }

    /// A peer task ended: forget it and what it had; `pending` blocks go back to the pool.
    pub fn unregister(&mut self, key: PeerKey, has: &Bitfield, pending: &[BlockRef]) {
        for b in pending {
            self.picker.unrequest(key, *b);
        }
        self.picker.remove_peer(has);
        self.peers.remove(&key);
    }

    /// Whether `addr` (or `id`) is banned.
    pub fn is_banned(&self, addr: &SocketAddr, id: Option<&[u8; 20]>) -> bool {
        self.banned.contains_key(addr) || id.is_some_and(|id| self.banned_ids.contains(id))
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
        self.fetched += data.len() as u64;
        match self.picker.received(key, block) {
            Receipt::Useless => {
                self.wasted += data.len() as u64;
                None
            }
            Receipt::Useful { complete, cancel } => {
                for other in cancel {
                    if let Some(p) = self.peers.get(&other) {
                        let _ = p.tx.send(Command::Cancel(block));
                    }
                }
                let i = block.piece.get();
                let buf = self.buffers.entry(i).or_insert_with(|| PieceBuf {
                    data: vec![0; piece_len as usize],
                    contributors: Vec::new(),
                });
                let at = block.offset as usize;
                buf.data[at..at + data.len()].copy_from_slice(data);
                match buf.contributors.iter_mut().find(|(s, _)| *s == source) {
                    Some((_, n)) => *n += data.len() as u64,
                    None => buf.contributors.push((source, data.len() as u64)),
                }
                if !complete {
                    return None;
                }
                let buf = self.buffers.remove(&i)?;
                Some(Complete {
                    piece: block.piece,
                    data: buf.data,
                    contributors: buf.contributors,
                })
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
        self.picker.verified(piece, ok);
        if ok {
            self.verified_bytes += u64::from(len);
            for &(source, n) in contributors {
                self.credit(source, n);
            }
            // Each task knows whether its peer already has the piece and stays quiet if so.
            for p in self.peers.values() {
                let _ = p.tx.send(Command::Have(piece.get()));
            }
            // The mirrors that lack the piece in `has` are those that alone sent it wrong.
            let mut dropped = Vec::new();
            for (i, w) in self.web.iter_mut().enumerate() {
                if !w.has.get(piece.get()) {
                    let why = format!("sent piece {} wrong", piece.get());
                    if w.health.proven(&why, crate::session::now()) {
                        dropped.push(Source::Web(i));
                    }
                }
            }
            return dropped;
        }
        self.wasted += u64::from(len);
        let mut newly = Vec::new();
        // Blame only a sole contributor. A piece that failed with several is fetched again from one
        // peer only (the picker's single-source retry), so the next failure names the culprit
        // exactly and an honest peer that shared a bad piece is never banned for it.
        match contributors {
            [(Source::Peer(addr), _)] => {
                let n = self.strikes.entry(*addr).or_default();
                *n += 1;
                if *n >= MAX_STRIKES && !self.banned.contains_key(addr) {
                    self.banned
                        .insert(*addr, format!("sent {n} pieces that failed the hash check"));
                    newly.push(Source::Peer(*addr));
                }
            }
            [(Source::Web(i), _)] => {
                if let Some(w) = self.web.get_mut(*i) {
                    if w.has.clear(piece.get()) {
                        let why = format!("piece {} failed its hash check", piece.get());
                        if w.health.suspect(&why) {
                            newly.push(Source::Web(*i));
                        }
                    }
                }
            }
            _ => {}
        }
        for p in self
            .peers
            .values()
            .filter(|p| newly.contains(&Source::Peer(p.addr)))
        {
            self.banned_ids.insert(p.id);
            let _ =
                p.tx.send(Command::Disconnect("banned: took part in bad pieces"));
        }
        newly
    }

    /// Useful bytes from `source`, counted once their piece is verified.
    fn credit(&mut self, source: Source, n: u64) {
        match source {
            Source::Peer(addr) => {
                self.tallies.entry(addr).or_default().bytes += n;
                self.from_peers += n;
            }
            Source::Web(i) => {
                if let Some(w) = self.web.get_mut(i) {
                    w.bytes += n;
                }
                self.from_web += n;
            }
        }
    }

    /// The bytes held in partial piece buffers.
    pub fn buffered(&self) -> usize {
        self.buffers.values().map(|b| b.data.len()).sum()
    }
}

#[cfg(test)]
mod tests;
