//! The connection logic against scripted peers over an in-memory duplex, with tokio's clock paused:
//! handshake, interest, requests and answers, choke, stalls, request floods, bans and shutdown, all
//! without a socket or an outside program.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rand::SeedableRng;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{watch, Notify};

use super::peer::PeerError;
use super::state::{Command, Torrent};
use super::{link, Config, Ctx, Status};
use crate::bitfield::Bitfield;
use crate::picker::{Picker, Strategy};
use crate::storage::layout::FileSlot;
use crate::storage::memory::MemoryStorage;
use crate::storage::{Layout, Storage};
use crate::types::{InfoHash, Lengths, PeerId, BLOCK_LEN};
use crate::wire::{Codec, Handshake, Message};

/// Pieces of the test torrent, each of two blocks.
const PIECES: u32 = 6;
const PIECE_LEN: u32 = 2 * BLOCK_LEN;
/// Time allowed for anything a test waits for (paused time: only reached if something is stuck).
const PATIENCE: Duration = Duration::from_secs(120);

/// A torrent of `PIECES` pieces of known bytes, `have` of them already verified.
fn torrent(have: &[u32]) -> (Arc<Ctx>, Vec<u8>) {
    build(have, false)
}

/// [`torrent`], private (BEP 27) or not.
fn build(have: &[u32], private: bool) -> (Arc<Ctx>, Vec<u8>) {
    build_selected(have, private, None)
}

/// [`build`], downloading only the `wanted` pieces (a file selection) when given.
fn build_selected(have: &[u32], private: bool, wanted: Option<&[u32]>) -> (Arc<Ctx>, Vec<u8>) {
    let data: Vec<u8> = (0..PIECES * PIECE_LEN)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let lengths = Lengths::new(data.len() as u64, PIECE_LEN).unwrap();
    let hashes: Vec<[u8; 20]> = data
        .chunks(PIECE_LEN as usize)
        .map(|c| Sha1::digest(c).into())
        .collect();
    let layout = Layout::from_files(
        lengths,
        vec![FileSlot {
            offset: 0,
            length: data.len() as u64,
            pad: false,
        }],
    );
    let storage = MemoryStorage::new(layout);
    let mut bits = Bitfield::new(PIECES);
    for &i in have {
        let p = lengths.piece(i).unwrap();
        let at = (i * PIECE_LEN) as usize;
        storage
            .write_piece(p, &data[at..at + PIECE_LEN as usize])
            .unwrap();
        bits.set(i);
    }
    let mut picker = Picker::new(lengths, Strategy::Sequential, bits, 64);
    let mut selection = crate::select::Selection::all(&[], lengths);
    if let Some(w) = wanted {
        let mut mask = Bitfield::new(PIECES);
        for &i in w {
            mask.set(i);
        }
        picker = picker.select(&mask);
        selection = crate::select::Selection::of_pieces(mask);
    }
    let pieces: Vec<u8> = hashes.iter().flatten().copied().collect();
    let info = crate::bencode::Value::dict([
        ("length", crate::bencode::Value::Int(data.len() as i64)),
        ("name", crate::bencode::Value::str("scripted")),
        (
            "piece length",
            crate::bencode::Value::Int(i64::from(PIECE_LEN)),
        ),
        ("pieces", crate::bencode::Value::Bytes(pieces)),
    ])
    .encode();
    let (status, _) = watch::channel(Status::Running);
    let (shutdown, _) = watch::channel(false);
    let counters = Arc::new(super::counters::Counters::default());
    let ctx = Ctx {
        info_hash: InfoHash(Sha1::digest(&info).into()),
        name: "t".into(),
        peer_id: PeerId(*b"-PX0001-testtesttest"),
        key: 1,
        lengths,
        port: 6881,
        v2_swarm: None,
        has_v2: false,
        check: Arc::new(crate::storage::PieceCheck::v1(hashes)),
        trees: super::hashes::Trees::default(),
        blame: super::blame::Pending::default(),
        info_bytes: info.into(),
        private,
        files: Vec::new(),
        selection,
        config: Config::new(std::env::temp_dir()),
        storage: Arc::new(storage),
        torrent: Mutex::new(Torrent::new(
            picker,
            rand::rngs::StdRng::seed_from_u64(7),
            counters.clone(),
        )),
        counters,
        wake: Notify::new(),
        need_peers: Notify::new(),
        interest: Notify::new(),
        blocks_freed: Notify::new(),
        status,
        shutdown,
        engine: super::engine::Shared::detached(),
    };
    (Arc::new(ctx), data)
}

/// The other end of a connection, played by the test.
struct Scripted {
    io: DuplexStream,
    codec: Codec,
    buf: BytesMut,
}

impl Scripted {
    /// Connects `ctx` (an outgoing connection of ours to `addr`) to a scripted peer with `id`.
    fn connect(
        ctx: &Arc<Ctx>,
        addr: SocketAddr,
    ) -> (Scripted, tokio::task::JoinHandle<Result<(), PeerError>>) {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let task = tokio::spawn(link::run(ctx.clone(), ours, addr, None, false));
        let peer = Scripted {
            io: theirs,
            codec: Codec::new(PIECES),
            buf: BytesMut::new(),
        };
        (peer, task)
    }

    /// A seeder with `id` at `addr`: handshaken, it sends its full bitfield, waits for our
    /// `interested` and unchokes us.
    async fn seeder(
        ctx: &Arc<Ctx>,
        addr: SocketAddr,
        id: [u8; 20],
    ) -> (Scripted, tokio::task::JoinHandle<Result<(), PeerError>>) {
        let (mut peer, task) = Scripted::connect(ctx, addr);
        peer.handshake_for(ctx.info_hash, ctx.info_hash, id).await;
        peer.send(Message::Bitfield(Bitfield::full(PIECES))).await;
        peer.until(|m| matches!(m, Message::Interested).then_some(()))
            .await;
        peer.send(Message::Unchoke).await;
        (peer, task)
    }

    /// Reads our handshake (for `ours`) and answers it with `info_hash`, as a peer without the
    /// Fast extension.
    async fn handshake_for(&mut self, ours: InfoHash, info_hash: InfoHash, id: [u8; 20]) {
        self.handshake_with(ours, info_hash, id, false).await;
    }

    /// Reads our handshake (for `ours`) and answers it with `info_hash`, with the BEP 6 bit when
    /// `fast`.
    async fn handshake_with(
        &mut self,
        ours: InfoHash,
        info_hash: InfoHash,
        id: [u8; 20],
        fast: bool,
    ) {
        let mut hs = [0u8; 68];
        self.io.read_exact(&mut hs).await.unwrap();
        assert_eq!(&hs[28..48], &ours.0, "our handshake names the torrent");
        let mut reply = Handshake::ours(info_hash, PeerId(id));
        if !fast {
            reply.reserved[7] &= !crate::wire::handshake::FAST_BIT;
        }
        self.io.write_all(&reply.encode()).await.unwrap();
    }

    async fn send(&mut self, msg: Message) {
        assert!(self.try_send(msg).await, "pixtorrent closed the connection");
    }

    /// Sends `msg`; `false` when pixtorrent has closed the connection.
    async fn try_send(&mut self, msg: Message) -> bool {
        let mut out = BytesMut::new();
        msg.encode(&mut out);
        self.io.write_all(&out).await.is_ok()
    }

    /// The next message we sent, skipping keep-alives; `None` when the connection closed.
    async fn recv(&mut self) -> Option<Message> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(m) = self.codec.decode(&mut self.buf).unwrap() {
                    if !matches!(m, Message::KeepAlive) {
                        return Some(m);
                    }
                    continue;
                }
                if self.io.read_buf(&mut self.buf).await.ok()? == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("a message from pixtorrent in time")
    }

    /// Receives until `pick` accepts a message; returns it.
    async fn until<T>(&mut self, mut pick: impl FnMut(&Message) -> Option<T>) -> T {
        loop {
            let m = self.recv().await.expect("connection still open");
            if let Some(t) = pick(&m) {
                return t;
            }
        }
    }

    /// Reads the requests of one batch (after an unchoke), as (piece, offset).
    async fn requests(&mut self, n: usize) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        while out.len() < n {
            let r = self
                .until(|m| match m {
                    Message::Request { index, begin, .. } => Some((*index, *begin)),
                    _ => None,
                })
                .await;
            out.push(r);
        }
        out
    }

    /// Sends the block at `piece`/`begin` (corrupted if asked); `false` when the connection closed.
    async fn block(&mut self, data: &[u8], piece: u32, begin: u32, corrupt: bool) -> bool {
        let at = (piece * PIECE_LEN + begin) as usize;
        let mut bytes = data[at..at + BLOCK_LEN as usize].to_vec();
        if corrupt {
            bytes[0] ^= 0xff;
        }
        self.try_send(Message::Piece {
            index: piece,
            begin,
            data: bytes.into(),
        })
        .await
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits (paused time) until `cond` holds of the torrent.
async fn eventually(ctx: &Ctx, cond: impl Fn(&Torrent) -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !cond(&ctx.lock()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition reached in time");
}

#[tokio::test(start_paused = true)]
async fn a_selection_asks_for_its_pieces_only_and_then_loses_interest() {
    let (ctx, data) = build_selected(&[], false, Some(&[1, 4]));
    // A peer with only unwanted pieces is not interesting.
    let (mut other, _other_task) = Scripted::connect(&ctx, addr(1002));
    other
        .handshake_for(ctx.info_hash, ctx.info_hash, [2; 20])
        .await;
    let mut unwanted = Bitfield::new(PIECES);
    for i in [0, 2, 3, 5] {
        unwanted.set(i);
    }
    other.send(Message::Bitfield(unwanted)).await;
    let (mut peer, task) = Scripted::seeder(&ctx, addr(1001), [1; 20]).await;
    let mut asked = Vec::new();
    for _ in 0..4 {
        let (piece, begin) = peer.requests(1).await[0];
        asked.push(piece);
        assert!(peer.block(&data, piece, begin, false).await);
    }
    asked.sort();
    asked.dedup();
    assert_eq!(asked, vec![1, 4], "only the wanted pieces are requested");
    eventually(&ctx, |t| t.picker().is_complete()).await;
    assert!(!ctx.lock().picker().has_all());
    peer.until(|m| matches!(m, Message::NotInterested).then_some(()))
        .await;
    other.send(Message::Unchoke).await;
    let interest = tokio::time::timeout(
        Duration::from_secs(5),
        other.until(|m| matches!(m, Message::Interested | Message::Request { .. }).then_some(())),
    )
    .await;
    assert!(
        interest.is_err(),
        "no interest in a peer with unwanted pieces only"
    );
    ctx.shutdown.send_replace(true);
    let _ = task.await;
}

#[tokio::test(start_paused = true)]
async fn downloads_every_piece_from_a_scripted_seeder() {
    let (ctx, data) = torrent(&[]);
    let (mut peer, task) = Scripted::seeder(&ctx, addr(1001), [1; 20]).await;
    let mut served = 0;
    while served < PIECES * 2 {
        let (piece, begin) = peer.requests(1).await[0];
        assert!(peer.block(&data, piece, begin, false).await);
        served += 1;
    }
    eventually(&ctx, |t| t.picker().is_complete()).await;
    let mut all = vec![0u8; data.len()];
    for i in 0..PIECES {
        let p = ctx.lengths.piece(i).unwrap();
        let at = (i * PIECE_LEN) as usize;
        ctx.storage
            .read(p, 0, &mut all[at..at + PIECE_LEN as usize])
            .unwrap();
    }
    assert_eq!(all, data, "every verified piece is in storage");
    // Nothing more to want: we say so, and the peer sees no `have` for pieces it has.
    peer.until(|m| matches!(m, Message::NotInterested).then_some(()))
        .await;
    ctx.shutdown.send_replace(true);
    let end = task.await.unwrap();
    assert!(
        matches!(end, Err(PeerError::Dropped("shutting down"))),
        "{end:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_choke_voids_the_requests_and_an_unchoke_asks_again() {
    let (ctx, _) = torrent(&[]);
    let (mut peer, _task) = Scripted::connect(&ctx, addr(1002));
    peer.handshake_for(ctx.info_hash, ctx.info_hash, [2; 20])
        .await;
    peer.send(Message::Bitfield(Bitfield::full(PIECES))).await;
    peer.send(Message::Unchoke).await;
    // The baseline window: 10 requests.
    let first = peer.requests(10).await;
    peer.send(Message::Choke).await;
    // Back in the picker: another client can take them.
    eventually(&ctx, |t| t.picker().wants_block(block(first[0]))).await;
    peer.send(Message::Unchoke).await;
    let again = peer.requests(10).await;
    assert_eq!(again, first, "the same blocks, asked again in order");
}

fn block((piece, begin): (u32, u32)) -> crate::types::BlockRef {
    let l = Lengths::new(u64::from(PIECES * PIECE_LEN), PIECE_LEN).unwrap();
    l.block_at(piece, begin, BLOCK_LEN).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_stalled_peer_gives_its_blocks_up_and_a_late_answer_still_counts() {
    let (ctx, data) = torrent(&[]);
    let (mut peer, _task) = Scripted::connect(&ctx, addr(1003));
    peer.handshake_for(ctx.info_hash, ctx.info_hash, [3; 20])
        .await;
    peer.send(Message::Bitfield(Bitfield::full(PIECES))).await;
    peer.send(Message::Unchoke).await;
    let asked = peer.requests(10).await;
    // Silence: after the first-block timeout (3 s) it counts as stalled (snubbed)...
    let started = tokio::time::Instant::now();
    eventually(&ctx, |t| t.peers().any(|p| p.stats.snubbed)).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(5),
        "stalled after {waited:?}"
    );
    // ...and every block it held is free for another client to take, without any endgame.
    let taken = { ctx.lock().pick(999, &Bitfield::full(PIECES), 100) };
    assert_eq!(taken.len(), (PIECES * 2) as usize, "all blocks were free");
    for b in &asked {
        assert!(taken.contains(&block(*b)), "{b:?} released");
    }
    // The stalled peer gets no new request while snubbed, but its late answer is taken.
    let (piece, begin) = asked[0];
    assert!(peer.block(&data, piece, begin, false).await);
    eventually(&ctx, |t| t.totals().fetched == u64::from(BLOCK_LEN)).await;
    assert_eq!(
        ctx.counters.totals().wasted,
        0,
        "a late answer to a released request is not waste"
    );
}

#[tokio::test(start_paused = true)]
async fn deep_pipelines_are_served_and_only_a_flood_drops_the_peer() {
    let (ctx, _) = torrent(&(0..PIECES).collect::<Vec<_>>());
    let (mut peer, task) = Scripted::connect(&ctx, addr(1004));
    peer.handshake_for(ctx.info_hash, ctx.info_hash, [4; 20])
        .await;
    let _ = peer
        .until(|m| matches!(m, Message::Bitfield(_)).then_some(()))
        .await;
    peer.send(Message::Interested).await;
    eventually(&ctx, |t| t.peer_count() > 0).await;
    for p in ctx.lock().peers() {
        p.tx.send(Command::Unchoke).unwrap();
    }
    peer.until(|m| matches!(m, Message::Unchoke).then_some(()))
        .await;
    // rtorrent-like: 3000 requests at once, far past the advertised `reqq`; all are served.
    let mut burst = BytesMut::new();
    for k in 0..3000u32 {
        let i = k % (PIECES * 2);
        Message::Request {
            index: i / 2,
            begin: (i % 2) * BLOCK_LEN,
            length: BLOCK_LEN,
        }
        .encode(&mut burst);
    }
    peer.io.write_all(&burst).await.unwrap();
    let mut blocks = 0;
    while blocks < 3000 {
        peer.until(|m| matches!(m, Message::Piece { .. }).then_some(()))
            .await;
        blocks += 1;
    }
    // A flood: 20,000 requests with nothing read meanwhile ends the connection.
    let mut flood = BytesMut::new();
    for _ in 0..20_000 {
        Message::Request {
            index: 0,
            begin: 0,
            length: BLOCK_LEN,
        }
        .encode(&mut flood);
    }
    let writer = tokio::spawn(async move {
        let _ = peer.io.write_all(&flood).await;
        peer
    });
    let end = tokio::time::timeout(PATIENCE, task)
        .await
        .expect("dropped in time")
        .unwrap();
    assert!(
        matches!(&end, Err(PeerError::Dropped(why)) if why.contains("flooded")),
        "{end:?}"
    );
    drop(writer);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_sends_three_bad_pieces_is_banned() {
    let (ctx, data) = torrent(&[]);
    let (mut peer, task) = Scripted::connect(&ctx, addr(1005));
    peer.handshake_for(ctx.info_hash, ctx.info_hash, [5; 20])
        .await;
    peer.send(Message::Bitfield(Bitfield::full(PIECES))).await;
    peer.send(Message::Unchoke).await;
    // Every block it sends is corrupt: piece after piece fails, until the third strike.
    let end = tokio::time::timeout(PATIENCE, async {
        loop {
            match peer.recv().await {
                None => break,
                Some(Message::Request { index, begin, .. }) => {
                    // Sending fails once pixtorrent has banned us and hung up: that is the point.
                    if !peer.block(&data, index, begin, true).await {
                        break;
                    }
                }
                Some(_) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the connection ended");
    let result = task.await.unwrap();
    assert!(
        matches!(result, Err(PeerError::Dropped(why)) if why.starts_with("banned")),
        "{result:?}"
    );
    let t = ctx.lock();
    assert!(t.is_banned(&addr(1005), Some(&[5; 20])));
    assert!(!t.picker().is_complete());
}

#[tokio::test(start_paused = true)]
async fn handshakes_for_another_torrent_or_from_ourselves_are_refused() {
    let (ctx, _) = torrent(&[]);
    let (mut other, task) = Scripted::connect(&ctx, addr(1006));
    other
        .handshake_for(ctx.info_hash, InfoHash([9; 20]), [6; 20])
        .await;
    let end = task.await.unwrap().unwrap_err();
    assert!(end.is_permanent(), "{end}");
    let (mut me, task) = Scripted::connect(&ctx, addr(1007));
    me.handshake_for(ctx.info_hash, ctx.info_hash, ctx.peer_id.0)
        .await;
    let end = task.await.unwrap().unwrap_err();
    assert!(end.is_permanent(), "{end}");
    assert!(ctx.lock().peer_count() == 0);
    // A peer that never answers the handshake is given up after the handshake timeout.
    let (_silent, task) = Scripted::connect(&ctx, addr(1008));
    let end = task.await.unwrap().unwrap_err();
    assert!(end.to_string().contains("handshake timed out"), "{end}");
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_dropped_as_idle() {
    let (ctx, _) = torrent(&[0]);
    let (mut peer, task) = Scripted::connect(&ctx, addr(1009));
    peer.handshake_for(ctx.info_hash, ctx.info_hash, [8; 20])
        .await;
    // It has nothing we want and sends nothing: after a minute of mutual disinterest it goes.
    let end = tokio::time::timeout(PATIENCE, task)
        .await
        .expect("ended in time")
        .unwrap();
    assert!(matches!(end, Err(PeerError::Dropped(_))), "{end:?}");
    assert!(ctx.lock().peer_count() == 0, "unregistered");
}

mod blame;
mod extensions;
mod fast;
mod v2;
