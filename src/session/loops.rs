//! The torrent's two long-running loops besides its peers: the choker, which decides every 10 s
//! whom we upload to, and the dialler, which connects to addresses from the pool while there is
//! room under `--max-peers` and the engine's global limit.

use std::sync::Arc;
use std::time::Duration;

use super::pool::PeerSource;
use super::{choker, link, now, Ctx};
use crate::types::InfoHash;

/// Between DHT lookups (each also announces us): libtorrent re-announces every 15 min; 5 keeps a
/// young swarm's new peers coming.
pub const DHT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The choker's look when no peer is connected.
const CHOKE_IDLE: Duration = Duration::from_secs(60);

/// Every 10 s (and at once when a peer becomes interested while a slot is free) decides who we
/// upload to and tells the peers whose state changes.
pub(super) async fn choke(ctx: Arc<Ctx>) {
    let mut choker = choker::Choker::default();
    loop {
        // With no peer connected there is nobody to choke or unchoke: wait for the first one to
        // become interested (or a minute), not a round.
        let round = if ctx.lock().peer_count() == 0 {
            CHOKE_IDLE
        } else {
            choker::ROUND
        };
        tokio::select! {
            _ = tokio::time::sleep(round) => {}
            _ = ctx.interest.notified() => {
                if ctx.lock().unchoked() > choker::SLOTS {
                    continue;
                }
            }
        }
        ctx.lock().choke_round(&mut choker);
    }
}

/// How often the dialler looks at the pool while it has addresses and room.
const DIAL_POLL: Duration = Duration::from_secs(1);
/// How often it looks when short of peers with no address to try: to ask for more.
const DIAL_IDLE_POLL: Duration = Duration::from_secs(5);
/// How often it looks when it has nothing to try and needs nothing (every event that changes that
/// wakes it sooner).
const DIAL_QUIET_POLL: Duration = Duration::from_secs(60);

pub(super) async fn dial(ctx: Arc<Ctx>) {
    let mut last_need = crate::session::now();
    let mut seeking;
    loop {
        // The engine is asked for global room only when we have room of our own and an address to
        // try: it locks each torrent in turn (so before our own lock is taken), and asked every
        // second by every torrent, 500 idle seeding torrents made 250,000 locks a second.
        let wants = {
            let t = ctx.lock();
            t.busy() < ctx.config.max_peers && t.pool().idle() > 0
        };
        let global_room = wants && ctx.engine.has_room();
        let due = {
            let mut t = ctx.lock();
            let room = if global_room {
                ctx.config.max_peers.saturating_sub(t.busy())
            } else {
                0
            };
            let due = t.pool_mut().due(crate::session::now(), room);
            // Short of peers with no address left to try: the announcers may ask for more early.
            // Not once complete: a seed waits for leechers to find it.
            seeking = t.peer_count() < ctx.config.max_peers / 2
                && t.pool().idle() == 0
                && !t.picker().is_complete();
            if seeking
                && crate::session::now().saturating_duration_since(last_need) >= DIAL_IDLE_POLL
            {
                last_need = crate::session::now();
                ctx.need_peers.notify_waiters();
            }
            due
        };
        for addr in due {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let result = link::connect(ctx.clone(), addr).await;
                let permanent = result.as_ref().is_err_and(|e| e.is_permanent());
                {
                    let mut t = ctx.lock();
                    t.pool_mut().ended(addr, permanent, crate::session::now());
                }
                ctx.wake.notify_one();
            });
        }
        // With addresses waiting out their retry delay, look again in a second. With none, new ones
        // and ended connections wake us (`wake`): the 5 s look only asks for more peers, and a
        // torrent that needs none (a seed) looks once a minute.
        let idle = match (wants, seeking) {
            (true, _) => DIAL_POLL,
            (false, true) => DIAL_IDLE_POLL,
            (false, false) => DIAL_QUIET_POLL,
        };
        tokio::select! {
            _ = ctx.wake.notified() => {}
            _ = tokio::time::sleep(idle) => {}
        }
    }
}

/// Peers from the DHT (BEP 5) for a public torrent: a `get_peers` lookup at once and then every
/// [`DHT_INTERVAL`], each followed by `announce_peer` with our listening port to the closest nodes,
/// so others find us while we download and while we seed. One loop per swarm id: a hybrid runs one
/// for its v1 id and one for its truncated v2 id (BEP 52), whose peers are dialled with that id; the
/// DHT counts as one tracker tier, by the v1 lookup.
pub(super) async fn dht(ctx: Arc<Ctx>, dht: crate::dht::node::Dht, swarm: InfoHash) {
    let target = crate::dht::id::NodeId(swarm.0);
    let v2 = ctx.v2_swarm == Some(swarm);
    let mut first = !v2;
    loop {
        // Peers are dialled as soon as a node names them; the lookup's end (announce) follows.
        let early = ctx.clone();
        let peers = dht
            .get_peers(target, Some(ctx.engine.port), move |found| {
                early
                    .lock()
                    .pool_mut()
                    .add_in(found, PeerSource::Dht, v2, now());
                early.wake.notify_one();
            })
            .await;
        let added = ctx.lock().dht_result(&peers, first, v2);
        tracing::debug!(
            found = peers.len(),
            new = added,
            nodes = dht.nodes(),
            "DHT peers"
        );
        first = false;
        ctx.wake.notify_one();
        tokio::time::sleep(DHT_INTERVAL).await;
    }
}
