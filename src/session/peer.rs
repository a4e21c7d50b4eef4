//! One task per peer, once [`super::link`] has connected and registered it: the reader and the
//! torrent's commands raced in `select!`, with a one-second tick for timeouts and keep-alives. The task keeps its own view of the peer (what it
//! has, what we asked for, its request window) and talks to the torrent only through short locked
//! calls on [`super::state::Torrent`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::mpsc;

use super::state::{Command, PeerStats, Source};
use super::upload::{Uploads, MAX_QUEUED};
use super::Ctx;
use crate::bitfield::Bitfield;
use crate::net::PeerStream;
use crate::outstanding::{Arrival, Outstanding};
use crate::picker::PeerKey;
use crate::pipeline::Pipeline;
use crate::types::BlockRef;
use crate::wire::extension::Registry;
use crate::wire::{Codec, Message, WireError};

mod extended;
mod fast;
mod io;
mod pex;
mod requests;
mod serve;

use io::{io_step, sleep_until, Io};

/// We send a keep-alive after this long without writing (peers drop links idle for 2 minutes).
const KEEPALIVE_AFTER: Duration = Duration::from_secs(100);
/// A peer that sends nothing at all for this long is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(150);
/// How long a snubbed peer (one that stalled: nothing for [`Pipeline::stall_after`] with requests
/// in flight) gets no new requests, unless it answers meanwhile.
const SNUB_PAUSE: Duration = Duration::from_secs(30);
/// Neither side interested for this long: the connection is useless, make room for another.
const USELESS_AFTER: Duration = Duration::from_secs(60);
/// Blocks a peer may send unasked (late after a timeout or cancel is normal, a stream is not).
const MAX_UNREQUESTED: u32 = 64;
/// Longest our writes may make no progress (the peer stopped reading) before we give up on it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests we queue from one peer, as told in our BEP 10 handshake.
const OUR_REQQ: u32 = MAX_QUEUED as u32;
/// Upload bytes buffered per loop turn before the socket must take them (backpressure).
const MAX_OUT: usize = 128 * 1024;
/// A peer connected this recently is "new" for the optimistic unchoke.
const NEW_PEER: Duration = Duration::from_secs(60);
/// Bytes read from the socket per call.
const READ_CHUNK: usize = 64 * 1024;

/// Why a peer connection ended.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Socket error or timeout.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Protocol violation.
    #[error("{0}")]
    Wire(#[from] WireError),
    /// The peer closed the connection.
    #[error("closed by the peer")]
    Closed,
    /// An outgoing connection that ended (closed, reset, silent) before the peer's handshake: over
    /// TCP, uTP may still reach it.
    #[error("no handshake: {0}")]
    Unanswered(std::io::Error),
    /// We closed it, for the reason given.
    #[error("{0}")]
    Dropped(&'static str),
    /// The peer is banned for this session.
    #[error("banned")]
    Banned,
}

impl PeerError {
    /// Whether trying this address again is pointless (ourselves, another torrent, a ban).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            PeerError::Wire(WireError::SelfConnection | WireError::WrongInfoHash(_))
                | PeerError::Banned
        )
    }
}

pub(super) fn timed_out(what: &'static str) -> PeerError {
    PeerError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}

/// What the peer's handshake says it speaks.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Supports {
    /// BEP 10 extended messages.
    pub(super) extensions: bool,
    /// A DHT node (BEP 5): it gets our `port` message and may send its own.
    pub(super) dht: bool,
    /// The Fast extension (BEP 6), set by both sides.
    pub(super) fast: bool,
}

/// Runs a registered peer's connection until it ends, then takes it out of the torrent.
pub(super) async fn serve_registered(
    ctx: Arc<Ctx>,
    stream: &mut impl PeerStream,
    addr: SocketAddr,
    registered: (PeerKey, Bitfield),
    supports: Supports,
    rx: mpsc::UnboundedReceiver<Command>,
) -> Result<(), PeerError> {
    let (key, ours) = registered;
    let mut conn = Conn::new(ctx.clone(), key, addr, supports.extensions, ours);
    conn.peer_dht = supports.dht;
    conn.fast = supports.fast;
    let result = conn.serve(stream, rx).await;
    conn.report();
    if conn.rejected > 0 {
        tracing::debug!(peer = %addr, rejects = conn.rejected, "its rejects (BEP 6) went back to the picker");
    }
    let pending: Vec<BlockRef> = conn.pending.live().collect();
    ctx.lock().unregister(key, &conn.has, &pending);
    ctx.wake.notify_one();
    if !pending.is_empty() {
        ctx.blocks_freed.notify_waiters();
    }
    result
}

/// One live connection's view of its peer.
struct Conn {
    ctx: Arc<Ctx>,
    key: PeerKey,
    addr: SocketAddr,
    /// Whether the peer speaks BEP 10.
    extensions: bool,
    /// Whether the peer runs a DHT node (BEP 5 reserved bit).
    peer_dht: bool,
    /// Whether both sides speak the Fast extension (BEP 6).
    fast: bool,
    /// Pieces the peer lets us request while it chokes us (BEP 6 allowed fast, bounded).
    peer_allowed: Vec<u32>,
    /// No new requests until then: the peer rejected one while unchoking us.
    reject_pause: Option<Instant>,
    /// Rejects received for our requests (BEP 6), for the log.
    rejected: u32,
    /// `--max-download-rate`: no new requests until then.
    down_wait: Option<Instant>,
    /// `--max-upload-rate`: no more blocks sent until then.
    up_wait: Option<Instant>,
    /// What the peer has.
    has: Bitfield,
    /// What we have, as far as this task has been told.
    ours: Bitfield,
    /// Leaf-hash answers left to this peer (BEP 52).
    leaf_budget: super::hashes::LeafBudget,
    /// Pieces the peer has and we lack.
    wanted: u32,
    codec: Codec,
    pipeline: Pipeline,
    /// Our requests in flight.
    pending: Outstanding,
    out: BytesMut,
    uploads: Uploads,
    /// Bytes uploaded since the last tick; payload bytes uploaded and received since we connected
    /// (the choker's counts).
    up_tick: u64,
    up_total: u64,
    down_total: u64,
    connected_at: Instant,
    peer_choking: bool,
    am_interested: bool,
    peer_interested: bool,
    snubbed_until: Option<Instant>,
    unrequested: u32,
    last_read: Instant,
    last_write: Instant,
    /// Since when bytes have waited to be written with no progress (`None`: nothing to write).
    write_waiting: Option<Instant>,
    /// What was read is to be acknowledged at once ([`PeerStream::ack_now`]).
    ack_due: bool,
    /// The extended message ids of this connection, both ways.
    registry: Registry,
    /// Metadata requests answered so far.
    metadata_served: u32,
    /// Peer exchange with this peer, both ways.
    pex: pex::PexState,
    last_block: Instant,
    last_useful: Instant,
}

impl Conn {
    fn new(
        ctx: Arc<Ctx>,
        key: PeerKey,
        addr: SocketAddr,
        extensions: bool,
        ours: Bitfield,
    ) -> Conn {
        let n = ctx.lengths.piece_count();
        let private = ctx.private;
        let now = crate::session::now();
        let pinned = ctx.config.requests_per_peer;
        let codec = if ctx.has_v2 {
            Codec::new(n).with_v2()
        } else {
            Codec::new(n)
        };
        Conn {
            ctx,
            key,
            addr,
            extensions,
            peer_dht: false,
            fast: false,
            peer_allowed: Vec::new(),
            reject_pause: None,
            rejected: 0,
            down_wait: None,
            up_wait: None,
            has: Bitfield::new(n),
            ours,
            leaf_budget: super::hashes::LeafBudget::new(),
            wanted: 0,
            codec,
            pipeline: Pipeline::new(pinned),
            pending: Outstanding::default(),
            out: BytesMut::with_capacity(4096),
            uploads: Uploads::default(),
            up_tick: 0,
            up_total: 0,
            down_total: 0,
            connected_at: now,
            peer_choking: true,
            am_interested: false,
            peer_interested: false,
            snubbed_until: None,
            unrequested: 0,
            last_read: now,
            last_write: now,
            write_waiting: None,
            ack_due: false,
            registry: Registry::new(extended::offered(private)),
            pex: pex::PexState::new(addr),
            metadata_served: 0,
            last_block: now,
            last_useful: now,
        }
    }

    async fn serve(
        &mut self,
        stream: &mut impl PeerStream,
        mut rx: mpsc::UnboundedReceiver<Command>,
    ) -> Result<(), PeerError> {
        self.greet();
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shutdown = self.ctx.shutdown.subscribe();
        let ctx = self.ctx.clone();
        loop {
            let now = crate::session::now();
            self.down_wait = self.down_wait.filter(|&t| now < t);
            self.up_wait = self.up_wait.filter(|&t| now < t);
            self.serve_some()?;
            let room = self.has_room();
            // The rate limits' next deadline, if one holds back work.
            let wake = [
                self.down_wait,
                self.up_wait.filter(|_| self.uploads.pending()),
            ]
            .into_iter()
            .flatten()
            .min();
            // Writing and reading go on at once: requests keep arriving while blocks go out (so the
            // queue never runs dry mid-batch), and a peer that stops reading cannot stop us from
            // reading it. What the handlers below encode is appended after what is being written.
            let mut sending = std::mem::take(&mut self.out);
            let sent_before = sending.len();
            let writing = !sending.is_empty();
            let result = tokio::select! {
                biased;
                io = io_step(stream, &mut sending, &mut rbuf) => match io {
                    Io::Wrote(Ok(0)) => Err(PeerError::Closed),
                    Io::Wrote(Ok(_)) => Ok(()),
                    Io::Wrote(Err(e)) => Err(e.into()),
                    Io::Read(n) => self.on_read(n, &mut rbuf, writing),
                },
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => Err(PeerError::Dropped("torrent closed")),
                },
                _ = tick.tick() => self.on_tick(),
                _ = ctx.blocks_freed.notified(), if room => Ok(()),
                _ = sleep_until(wake) => Ok(()),
                _ = shutdown.changed() => Err(PeerError::Dropped("shutting down")),
            };
            let progressed = sending.len() < sent_before;
            if !self.out.is_empty() {
                sending.extend_from_slice(&self.out);
            }
            self.out = sending;
            self.after_write(progressed, crate::session::now());
            if std::mem::take(&mut self.ack_due) {
                stream.ack_now();
            }
            result?;
            self.refill();
        }
    }

    /// Keeps the write clocks: the last write (keep-alives) and since when unsent bytes have waited
    /// without progress (a peer that stopped reading).
    fn after_write(&mut self, progressed: bool, now: Instant) {
        if progressed {
            self.last_write = now;
        }
        self.write_waiting = match (self.out.is_empty(), self.write_waiting) {
            (true, _) => None,
            (false, Some(since)) if !progressed => Some(since),
            (false, _) => Some(now),
        };
    }

    /// Bytes arrived (or the peer closed): decode and handle every whole message. When nothing of
    /// ours is about to go out (`writing`: bytes still being written), what was read is acknowledged
    /// at once ([`PeerStream::ack_now`]); otherwise the ACK rides on our next data segment. Only when
    /// we have nothing to send: an ACK of its own for every request segment while blocks are going
    /// out anyway cost Transmission 3.00, which reads in pulses, about 5% of its download speed.
    fn on_read(
        &mut self,
        n: std::io::Result<usize>,
        rbuf: &mut BytesMut,
        writing: bool,
    ) -> Result<(), PeerError> {
        if n? == 0 {
            return Err(PeerError::Closed);
        }
        self.last_read = crate::session::now();
        while let Some(msg) = self.codec.decode(rbuf)? {
            self.on_message(msg)?;
        }
        if !writing && self.out.is_empty() && !self.uploads.pending() {
            self.ack_due = true;
        }
        if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
            rbuf.reserve(READ_CHUNK);
        }
        Ok(())
    }

    fn on_message(&mut self, msg: Message) -> Result<(), PeerError> {
        match msg {
            Message::Port(port) => self.on_port(port),
            // BEP 52's hash messages (decoded for torrents with a v2 side): a request is answered
            // at once from the trees we hold, `hashes` or `hash reject` (super::hashes).
            Message::HashRequest(r) => self.on_hash_request(&r),
            // Leaf hashes of a piece that failed: its bad blocks are blamed (super::blame).
            Message::Hashes(h) => super::blame::answered(&self.ctx, self.addr, &h),
            Message::HashReject(r) => self.ctx.blame.rejected(self.addr, &r),
            Message::KeepAlive | Message::Unknown(_) => {}
            Message::Extended { id, payload } => self.on_extended(id, &payload),
            Message::Choke => {
                self.peer_choking = true;
                // With BEP 6 our requests stand until served or rejected (the stall rule covers a
                // peer that does neither); without it, a choke voids them all (BEP 3).
                if !self.fast {
                    self.return_pending();
                }
            }
            Message::Unchoke => {
                self.peer_choking = false;
                if self.fast {
                    // Requests released during the choke were neither served nor rejected: void.
                    self.pending.drop_released();
                }
                self.pipeline.reset_rate();
                self.last_block = crate::session::now();
            }
            Message::Interested => {
                if !self.peer_interested {
                    self.peer_interested = true;
                    self.report();
                    self.ctx.interest.notify_one();
                }
            }
            Message::NotInterested => self.peer_interested = false,
            Message::Have(i) => self.add_pieces([i]),
            // Merged with any `have`s that came first (a late bitfield, as aria2 sends).
            Message::Bitfield(b) => self.add_pieces(b.ones()),
            Message::Request {
                index,
                begin,
                length,
            } => {
                let lengths = self.ctx.lengths;
                self.uploads
                    .request(&lengths, &self.ours, index, begin, length)
                    .map_err(|r| PeerError::Dropped(r.as_str()))?;
                self.send_rejects();
            }
            Message::Cancel {
                index,
                begin,
                length,
            } => {
                self.uploads.cancel(index, begin, length);
                self.send_rejects();
            }
            Message::HaveAll
            | Message::HaveNone
            | Message::Suggest(_)
            | Message::Reject { .. }
            | Message::AllowedFast(_) => self.on_fast(msg)?,
            Message::Piece { index, begin, data } => self.on_piece(index, begin, &data)?,
        }
        Ok(())
    }

    /// The peer has `pieces` (a `have`, a bitfield, `have all`).
    fn add_pieces(&mut self, pieces: impl IntoIterator<Item = u32>) {
        let mut t = self.ctx.lock();
        for i in pieces {
            if self.has.set(i) {
                if !self.ours.get(i) && self.ctx.selection.wanted().get(i) {
                    self.wanted += 1;
                }
                if let Some(p) = self.ctx.lengths.piece(i) {
                    t.add_have(p);
                }
            }
        }
        drop(t);
        // Only while it may still be starting: it can only stop being one.
        if self.uploads.starting() {
            self.uploads
                .set_starting(crate::wire::fast::starting(self.has.count()));
        }
        self.update_interest();
    }

    fn on_piece(&mut self, index: u32, begin: u32, data: &[u8]) -> Result<(), PeerError> {
        let now = crate::session::now();
        let lengths = self.ctx.lengths;
        let Some(block) = lengths.block_at(index, begin, data.len() as u32) else {
            return self.unrequested();
        };
        match self.pending.arrived(block, now) {
            Arrival::Asked { latency, .. } => {
                self.pipeline.on_block(now, latency, block.len);
                self.down_total += u64::from(block.len);
                self.last_block = now;
                // It answers after all: no longer snubbed.
                self.snubbed_until = None;
            }
            Arrival::Unasked => self.unrequested()?,
        }
        self.last_useful = now;
        let piece_len = lengths.piece_len(block.piece);
        let complete =
            self.ctx
                .lock()
                .block(self.key, Source::Peer(self.addr), block, data, piece_len);
        if let Some(c) = complete {
            super::verify::spawn(self.ctx.clone(), c);
        }
        Ok(())
    }

    fn unrequested(&mut self) -> Result<(), PeerError> {
        self.unrequested += 1;
        if self.unrequested > MAX_UNREQUESTED {
            return Err(PeerError::Dropped("kept sending blocks we did not request"));
        }
        Ok(())
    }

    fn on_command(&mut self, cmd: Command) -> Result<(), PeerError> {
        match cmd {
            Command::Have(i) => {
                if self.ours.set(i) {
                    if self.has.get(i) && self.ctx.selection.wanted().get(i) {
                        self.wanted = self.wanted.saturating_sub(1);
                        self.update_interest();
                    } else {
                        Message::Have(i).encode(&mut self.out);
                    }
                }
            }
            Command::Cancel(block) => {
                if self.pending.cancel(block) {
                    Message::cancel(block).encode(&mut self.out);
                }
            }
            Command::Disconnect(why) => return Err(PeerError::Dropped(why)),
            Command::HashRequest(r) => Message::HashRequest(r).encode(&mut self.out),
            Command::Unchoke => {
                if self.uploads.choking {
                    self.uploads.unchoke();
                    Message::Unchoke.encode(&mut self.out);
                }
            }
            Command::Choke => {
                if !self.uploads.choking {
                    self.uploads.choke();
                    // Choke first, then the rejects (BEP 6), so the peer does not ask again.
                    Message::Choke.encode(&mut self.out);
                    self.send_rejects();
                }
            }
        }
        Ok(())
    }

    fn on_tick(&mut self) -> Result<(), PeerError> {
        let now = crate::session::now();
        if now.duration_since(self.last_read) > IDLE_TIMEOUT {
            return Err(PeerError::Dropped("idle"));
        }
        if self
            .write_waiting
            .is_some_and(|since| now.duration_since(since) > WRITE_TIMEOUT)
        {
            return Err(timed_out("write timed out"));
        }
        self.check_stall(now);
        if self.am_interested || self.peer_interested {
            self.last_useful = now;
        } else if now.duration_since(self.last_useful) > USELESS_AFTER {
            return Err(PeerError::Dropped("neither side interested"));
        }
        if now.duration_since(self.last_write) > KEEPALIVE_AFTER && self.out.is_empty() {
            Message::KeepAlive.encode(&mut self.out);
        }
        self.report();
        self.send_pex(now);
        Ok(())
    }

    /// Tells the torrent this peer's figures (choker input, upload total).
    fn report(&mut self) {
        let now = crate::session::now();
        let stats = PeerStats {
            interested: self.peer_interested,
            downloaded: self.down_total,
            uploaded: self.up_total,
            snubbed: self.snubbed_until.is_some_and(|t| now < t),
            new: now.duration_since(self.connected_at) < NEW_PEER,
            choking: self.peer_choking,
        };
        let seed = self.has.is_full();
        self.ctx
            .lock()
            .report(self.key, stats, seed, std::mem::take(&mut self.up_tick));
    }

    fn update_interest(&mut self) {
        let want = self.wanted > 0;
        if want != self.am_interested {
            self.am_interested = want;
            let msg = if want {
                Message::Interested
            } else {
                Message::NotInterested
            };
            msg.encode(&mut self.out);
            self.last_useful = crate::session::now();
        }
    }
}
