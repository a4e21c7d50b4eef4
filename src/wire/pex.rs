//! BEP 11 peer exchange (`ut_pex`): the message codec ([`PexMessage`]), what we tell one peer
//! ([`PexOut`]: a diff at most once a minute, filtered by address scope) and what we take from one
//! ([`PexIn`]: rate-capped, de-duplicated, our own addresses removed). Pure: no sockets, no clock.
//!
//! **Private torrents (BEP 27) never use PEX.** That is the caller's decision: for a torrent whose
//! `info` has `private: 1`, do not offer `ut_pex` in the extended handshake, ignore any `ut_pex`
//! message a peer sends anyway, and create neither [`PexOut`] nor [`PexIn`].
//!
//! Interop facts the session must keep (libtorrent 2.0, `src/ut_pex.cpp`):
//! - libtorrent takes an `added` list only when `added.f` has exactly one byte per entry, so
//!   [`PexMessage::encode`] always writes the flags; we read a missing or short `added.f` as flags 0.
//! - libtorrent sends all six keys, empty ones included; its first message lists up to 100 peers,
//!   later ones are diffs, and its `dropped` lists are not capped.
//! - libtorrent disconnects a peer that sends it 7 `ut_pex` messages within 60 s; we send at most one
//!   per [`PEX_INTERVAL`].
//! - A peer goes into `connected` (for [`PexOut::next`]) only once its BitTorrent handshake is done,
//!   under its *listening* address: the address we dialled, or for an incoming connection its IP with
//!   the `p` port of its extended handshake (skip an incoming peer that sent no `p`).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::{BitOr, BitOrAssign};
use std::time::{Duration, Instant};

use crate::bencode::{decode, BencodeError, Limits, Node, Value};

/// The extension's name in the `m` dictionary of the BEP 10 handshake.
pub const NAME: &str = "ut_pex";
/// The extended message id we offer for `ut_pex` in our handshake (libtorrent uses 1 as well; any
/// non-zero id works, peers address us with ours and we address them with theirs).
pub const OUR_MESSAGE_ID: u8 = 1;

/// Least time between two messages to one peer: BEP 11 allows at most one a minute.
pub const PEX_INTERVAL: Duration = Duration::from_secs(60);
/// Wait before the first message to a peer: long enough for the connections a torrent opens in
/// parallel at startup to finish their handshakes (a fuller first list), short enough that a new peer
/// learns the swarm at once, as libtorrent's does (it sends its first within a second or so).
pub const FIRST_MESSAGE_DELAY: Duration = Duration::from_secs(3);
/// Most added entries (v4 and v6 together) we send in one message: BEP 11's limit.
pub const MAX_ADDED_PER_MESSAGE: usize = 50;
/// Most dropped entries we send in one message: BEP 11 applies the same limit of 50; since we add at
/// most 50 a minute, drops drained at 50 a minute always catch up.
pub const MAX_DROPPED_PER_MESSAGE: usize = 50;
/// Most added entries we keep from one received message: libtorrent's first message carries up to
/// 100 (BEP 11 exempts the initial message from the limit of 50); the rest are ignored.
pub const MAX_ADDED_PARSED: usize = 100;
/// Most dropped entries we keep from one received message: libtorrent lists every peer gone since
/// its last message, bounded in practice by its connection limit (200 by default); the rest are
/// ignored (a missed drop only keeps an address in [`PexIn`]'s bounded memory).
pub const MAX_DROPPED_PARSED: usize = 200;
/// Most addresses [`PexIn::accept`] returns per peer in any 60 s: two full messages from a client that
/// sends 50 a minute, or libtorrent's first message of 100, while one peer cannot fill our address
/// pool or turn us into a connection flood against a victim (BEP 11, security considerations).
pub const MAX_ACCEPTED_PER_MINUTE: usize = 100;
/// The rolling window of [`MAX_ACCEPTED_PER_MINUTE`].
pub const ACCEPT_WINDOW: Duration = Duration::from_secs(60);
/// Sustained spacing of received messages we process: a compliant peer sends one a minute, and 15 s of
/// slack absorbs timer jitter and delays in our reading. Faster messages are ignored, not an error.
pub const MIN_RECEIVE_SPACING: Duration = Duration::from_secs(45);
/// Messages a peer may send back to back before [`MIN_RECEIVE_SPACING`] applies: a compliant peer's
/// messages arrive together when we read its socket after a stall (libtorrent tolerates 6 a minute).
pub const RECEIVE_BURST: u32 = 2;
/// Most addresses from one peer [`PexIn`] remembers (until that peer drops them) to de-duplicate:
/// above any client's connection limit (libtorrent 200, Transmission 50 per torrent), so a compliant
/// peer never reaches it; beyond it new addresses are ignored. About 64 KiB at most.
pub const MAX_REMEMBERED_PER_PEER: usize = 1000;

/// Bytes of one compact IPv4 contact: address then port, big-endian.
const V4_LEN: usize = 6;
/// Bytes of one compact IPv6 contact.
const V6_LEN: usize = 18;

/// BEP 11 per-peer flags, one byte per `added` entry. Unknown bits are kept as received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// No flag set.
    pub const NONE: PexFlags = PexFlags(0);
    /// 0x01: prefers encryption (the peer's extended handshake had `e`).
    pub const ENCRYPTION: PexFlags = PexFlags(0x01);
    /// 0x02: seed or upload-only.
    pub const SEED: PexFlags = PexFlags(0x02);
    /// 0x04: supports uTP (a hint: 0 does not mean it does not).
    pub const UTP: PexFlags = PexFlags(0x04);
    /// 0x08: supports `ut_holepunch` (BEP 55).
    pub const HOLEPUNCH: PexFlags = PexFlags(0x08);
    /// 0x10: reachable, we connected to it (an outgoing connection).
    pub const REACHABLE: PexFlags = PexFlags(0x10);

    /// The raw byte.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Whether every bit of `other` is set here.
    pub const fn contains(self, other: PexFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// 0x01 is set.
    pub const fn prefers_encryption(self) -> bool {
        self.contains(Self::ENCRYPTION)
    }
    /// 0x02 is set.
    pub const fn is_seed(self) -> bool {
        self.contains(Self::SEED)
    }
    /// 0x04 is set.
    pub const fn supports_utp(self) -> bool {
        self.contains(Self::UTP)
    }
    /// 0x08 is set.
    pub const fn supports_holepunch(self) -> bool {
        self.contains(Self::HOLEPUNCH)
    }
    /// 0x10 is set.
    pub const fn is_reachable(self) -> bool {
        self.contains(Self::REACHABLE)
    }
}

impl BitOr for PexFlags {
    type Output = PexFlags;
    fn bitor(self, rhs: PexFlags) -> PexFlags {
        PexFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for PexFlags {
    fn bitor_assign(&mut self, rhs: PexFlags) {
        self.0 |= rhs.0;
    }
}

/// Why a `ut_pex` payload was refused. The message is ignored; PEX is best effort, so the peer may be
/// kept (libtorrent disconnects on the first two).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PexError {
    /// Not bencode, or larger or more complex than [`Limits::PEER_MESSAGE`] allows.
    #[error("ut_pex message is not valid bencode: {0}")]
    Bencode(BencodeError),
    /// Bencode, but not a dictionary.
    #[error("ut_pex message is a {0}, expected a dictionary")]
    NotADictionary(&'static str),
    /// A known key holding something other than a byte string.
    #[error("ut_pex field `{key}` is a {kind}, expected a byte string")]
    NotAString {
        /// `added`, `added.f`, `added6`, `added6.f`, `dropped` or `dropped6`.
        key: &'static str,
        /// What it was instead.
        kind: &'static str,
    },
}

/// One `ut_pex` message: peers connected since the last message (with their flags) and peers gone.
/// IPv4 addresses travel in `added`/`added.f`/`dropped`, IPv6 in `added6`/`added6.f`/`dropped6`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Newly connected peers, in message order (IPv4 ones first after [`PexMessage::parse`]).
    pub added: Vec<(SocketAddr, PexFlags)>,
    /// Peers no longer connected.
    pub dropped: Vec<SocketAddr>,
}

impl PexMessage {
    /// Whether the message says nothing (BEP 11 requires at least one entry; we never send one).
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.dropped.is_empty()
    }

    /// The bencoded payload (without the BEP 10 header), as libtorrent 2.0 writes it: all six keys,
    /// sorted, empty strings included, one flag byte per added entry. Writes exactly what it is given
    /// (no caps, no filtering: [`PexOut::next`] has done both); IPv4-mapped IPv6 goes out as IPv4.
    pub fn encode(&self) -> Vec<u8> {
        let (mut added, mut added_f, mut added6, mut added6_f) = (vec![], vec![], vec![], vec![]);
        for &(addr, flags) in &self.added {
            if write_compact(addr, &mut added, &mut added6) {
                added_f.push(flags.bits());
            } else {
                added6_f.push(flags.bits());
            }
        }
        let (mut dropped, mut dropped6) = (vec![], vec![]);
        for &addr in &self.dropped {
            write_compact(addr, &mut dropped, &mut dropped6);
        }
        Value::dict([
            ("added", Value::Bytes(added)),
            ("added.f", Value::Bytes(added_f)),
            ("added6", Value::Bytes(added6)),
            ("added6.f", Value::Bytes(added6_f)),
            ("dropped", Value::Bytes(dropped)),
            ("dropped6", Value::Bytes(dropped6)),
        ])
        .encode()
    }

    /// Parses a `ut_pex` payload (after the BEP 10 header), bounded by [`Limits::PEER_MESSAGE`].
    /// Lenient where libtorrent is: absent keys are empty, unknown keys are ignored, a compact string
    /// whose length is not a multiple of 6 (18) keeps its whole entries, a missing or short `added.f`
    /// means flags 0 for the entries it lacks. Entries with port 0 or an address no peer can have
    /// (unspecified, multicast, broadcast, reserved: see [`scope`]) are skipped; at most
    /// [`MAX_ADDED_PARSED`] added and [`MAX_DROPPED_PARSED`] dropped entries are kept, the rest ignored.
    /// IPv4-mapped IPv6 addresses become IPv4.
    pub fn parse(payload: &[u8]) -> Result<PexMessage, PexError> {
        let doc = decode(payload, Limits::PEER_MESSAGE).map_err(PexError::Bencode)?;
        let root = doc.root();
        if !root.is_dict() {
            return Err(PexError::NotADictionary(root.kind_name()));
        }
        let mut msg = PexMessage::default();
        let v4 = (string(root, "added")?, string(root, "added.f")?);
        let v6 = (string(root, "added6")?, string(root, "added6.f")?);
        for (entries, flags, stride) in [(v4.0, v4.1, V4_LEN), (v6.0, v6.1, V6_LEN)] {
            let room = MAX_ADDED_PARSED - msg.added.len();
            let found = entries
                .chunks_exact(stride)
                .enumerate()
                .filter_map(|(i, c)| {
                    let flags = PexFlags(flags.get(i).copied().unwrap_or(0));
                    read_compact(c).filter(is_peer_addr).map(|a| (a, flags))
                });
            msg.added.extend(found.take(room));
        }
        for (key, stride) in [("dropped", V4_LEN), ("dropped6", V6_LEN)] {
            let room = MAX_DROPPED_PARSED - msg.dropped.len();
            let found = string(root, key)?.chunks_exact(stride);
            msg.dropped.extend(
                found
                    .filter_map(read_compact)
                    .filter(is_peer_addr)
                    .take(room),
            );
        }
        Ok(msg)
    }
}

/// The byte string under `key`, empty when absent.
fn string<'a>(root: Node<'_, 'a>, key: &'static str) -> Result<&'a [u8], PexError> {
    match root.get(key.as_bytes()) {
        None => Ok(&[]),
        Some(node) => node.as_bytes().ok_or(PexError::NotAString {
            key,
            kind: node.kind_name(),
        }),
    }
}

/// One compact contact (6 or 18 bytes), IPv4-mapped IPv6 made IPv4; `None` for any other length.
fn read_compact(chunk: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = chunk.split_at_checked(chunk.len().checked_sub(2)?)?;
    let port = u16::from_be_bytes([port[0], port[1]]);
    let ip = match ip.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(ip).ok()?)),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?)),
        _ => return None,
    };
    Some(canonical(SocketAddr::new(ip, port)))
}

/// Appends `addr` in compact form to `v4` or `v6`; true if it went to `v4`.
fn write_compact(addr: SocketAddr, v4: &mut Vec<u8>, v6: &mut Vec<u8>) -> bool {
    let port = addr.port().to_be_bytes();
    match addr.ip().to_canonical() {
        IpAddr::V4(ip) => {
            v4.extend_from_slice(&ip.octets());
            v4.extend_from_slice(&port);
            true
        }
        IpAddr::V6(ip) => {
            v6.extend_from_slice(&ip.octets());
            v6.extend_from_slice(&port);
            false
        }
    }
}

/// `addr` with an IPv4-mapped IPv6 address made IPv4 (and no IPv6 flow or scope id).
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Whether `addr` could be a peer: a non-zero port and an address with a [`scope`].
fn is_peer_addr(addr: &SocketAddr) -> bool {
    addr.port() != 0 && scope(addr.ip()).is_some()
}

/// How far an address reaches, narrowest first: an address may be told to (or taken from) a peer
/// whose own address has the same or a narrower scope, never a wider one (see [`visible_to`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// This machine: 127.0.0.0/8, ::1.
    Loopback,
    /// A local network: RFC 1918 (10/8, 172.16/12, 192.168/16), CGNAT 100.64/10, link-local
    /// (169.254/16, fe80::/10), unique local fc00::/7, deprecated site-local fec0::/10.
    Lan,
    /// Everything else (documentation ranges included, so tests can use 203.0.113.0/24).
    Global,
}

/// The scope of `ip`, or `None` for an address no peer can have: unspecified, 0.0.0.0/8, multicast,
/// 240.0.0.0/4 (reserved, with the broadcast address). IPv4-mapped IPv6 is classified as IPv4.
pub fn scope(ip: IpAddr) -> Option<Scope> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => scope_v4(v4),
        IpAddr::V6(v6) => scope_v6(v6),
    }
}

fn scope_v4(ip: Ipv4Addr) -> Option<Scope> {
    let [a, b, _, _] = ip.octets();
    if a == 0 || ip.is_multicast() || a >= 240 {
        None
    } else if ip.is_loopback() {
        Some(Scope::Loopback)
    } else if ip.is_private() || ip.is_link_local() || (a == 100 && b & 0xc0 == 64) {
        Some(Scope::Lan)
    } else {
        Some(Scope::Global)
    }
}

fn scope_v6(ip: Ipv6Addr) -> Option<Scope> {
    let first = ip.segments()[0];
    if ip.is_unspecified() || ip.is_multicast() {
        None
    } else if ip.is_loopback() {
        Some(Scope::Loopback)
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        Some(Scope::Lan)
    } else {
        Some(Scope::Global)
    }
}

/// Whether `addr` means something to a peer at `peer`: `addr` has a scope at least as wide as the
/// peer's (a peer on a public address gets only public addresses; one on a LAN gets LAN and public
/// ones; one on loopback gets everything). A peer whose own address has no scope counts as public.
pub fn visible_to(addr: IpAddr, peer: IpAddr) -> bool {
    match scope(addr) {
        Some(s) => s >= scope(peer).unwrap_or(Scope::Global),
        None => false,
    }
}

/// What we have told one peer, and when: builds each `ut_pex` message to it as the diff between the
/// peers it has been told about and the peers connected now. Memory: the addresses told and not yet
/// dropped (at most the connected set plus drops waiting for the next message).
#[derive(Debug, Clone)]
pub struct PexOut {
    first_at: Instant,
    last_sent: Option<Instant>,
    told: BTreeSet<SocketAddr>,
}

impl PexOut {
    /// A peer whose extended handshake, just received at `now`, offered `ut_pex`.
    pub fn new(now: Instant) -> PexOut {
        PexOut {
            first_at: now + FIRST_MESSAGE_DELAY,
            last_sent: None,
            told: BTreeSet::new(),
        }
    }

    /// The earliest time [`PexOut::next`] may return a message: a timer for the caller.
    pub fn due(&self) -> Instant {
        self.last_sent.map_or(self.first_at, |t| t + PEX_INTERVAL)
    }

    /// How many addresses the peer currently believes we are connected to (told added, not dropped).
    pub fn told(&self) -> usize {
        self.told.len()
    }

    /// The message to send `receiver` now, if one is due and there is something to say. `connected`
    /// lists the torrent's handshaken peers by listening address (see the module doc) with their
    /// flags; `receiver` is this peer's address in the same form. Added: connected, not yet told,
    /// visible to the receiver (see [`visible_to`]), never the receiver, at most
    /// [`MAX_ADDED_PER_MESSAGE`] in `connected` order (the rest go in later messages). Dropped: told
    /// but no longer connected, at most [`MAX_DROPPED_PER_MESSAGE`]. A peer that connected and
    /// disconnected between two messages appears in neither. `None` before [`PexOut::due`] or when
    /// nothing changed; the interval restarts only when a message is returned.
    pub fn next(
        &mut self,
        now: Instant,
        connected: &[(SocketAddr, PexFlags)],
        receiver: SocketAddr,
    ) -> Option<PexMessage> {
        if now < self.due() {
            return None;
        }
        let receiver = canonical(receiver);
        let mut live = BTreeSet::new();
        let mut added = Vec::new();
        for &(addr, flags) in connected {
            let addr = canonical(addr);
            let tellable =
                is_peer_addr(&addr) && addr != receiver && visible_to(addr.ip(), receiver.ip());
            if !tellable || !live.insert(addr) {
                continue;
            }
            if !self.told.contains(&addr) && added.len() < MAX_ADDED_PER_MESSAGE {
                added.push((addr, flags));
            }
        }
        let dropped: Vec<SocketAddr> = self
            .told
            .iter()
            .filter(|a| !live.contains(*a))
            .take(MAX_DROPPED_PER_MESSAGE)
            .copied()
            .collect();
        if added.is_empty() && dropped.is_empty() {
            return None;
        }
        for addr in &dropped {
            self.told.remove(addr);
        }
        self.told.extend(added.iter().map(|&(a, _)| a));
        self.last_sent = Some(now);
        Some(PexMessage { added, dropped })
    }
}

/// What we have taken from one peer's `ut_pex` messages: decides which of their addresses are worth
/// dialling. Memory is bounded: [`MAX_ACCEPTED_PER_MINUTE`] timestamps and
/// [`MAX_REMEMBERED_PER_PEER`] addresses.
#[derive(Debug, Clone)]
pub struct PexIn {
    sender: SocketAddr,
    /// When the next message is due on the sustained schedule (a GCRA, "generic cell rate
    /// algorithm": one state instead of a list of arrival times).
    schedule: Option<Instant>,
    accepted: VecDeque<Instant>,
    /// Addresses returned and not since dropped, keyed by [`dedupe_key`], valued by port.
    remembered: HashMap<SocketAddr, u16>,
    ignored: u64,
}

impl PexIn {
    /// A peer connected from `sender` (its remote address; only the IP's scope and the exact address
    /// matter).
    pub fn new(sender: SocketAddr) -> PexIn {
        PexIn {
            sender: canonical(sender),
            schedule: None,
            accepted: VecDeque::new(),
            remembered: HashMap::new(),
            ignored: 0,
        }
    }

    /// How many messages were ignored for arriving too fast (for logs; disconnecting is optional).
    pub fn ignored_messages(&self) -> u64 {
        self.ignored
    }

    /// The addresses from `msg` worth dialling, with their flags. A message arriving faster than
    /// [`MIN_RECEIVE_SPACING`] allows (after a burst of [`RECEIVE_BURST`]) is ignored whole. Its
    /// `dropped` entries are forgotten first; then an added address is returned unless it is invisible
    /// from the sender's scope (a public peer's LAN or loopback addresses: [`visible_to`]), the sender
    /// itself, one of `ours` (our listening addresses as peers see them: a peer's list includes us),
    /// already returned and not dropped since, or on an IP already returned with another port
    /// (loopback excepted: that is this machine, where tests run many peers), and while fewer than
    /// [`MAX_ACCEPTED_PER_MINUTE`] were returned in the last [`ACCEPT_WINDOW`] and fewer than
    /// [`MAX_REMEMBERED_PER_PEER`] are remembered. Addresses refused for a cap are not remembered.
    pub fn accept(
        &mut self,
        now: Instant,
        msg: &PexMessage,
        ours: &[SocketAddr],
    ) -> Vec<(SocketAddr, PexFlags)> {
        if !self.admit(now) {
            self.ignored += 1;
            return Vec::new();
        }
        for &addr in &msg.dropped {
            let addr = canonical(addr);
            let key = dedupe_key(addr);
            if self.remembered.get(&key) == Some(&addr.port()) {
                self.remembered.remove(&key);
            }
        }
        while let Some(&t) = self.accepted.front() {
            if now.saturating_duration_since(t) < ACCEPT_WINDOW {
                break;
            }
            self.accepted.pop_front();
        }
        let mut out = Vec::new();
        for &(addr, flags) in &msg.added {
            if self.accepted.len() >= MAX_ACCEPTED_PER_MINUTE
                || self.remembered.len() >= MAX_REMEMBERED_PER_PEER
            {
                break;
            }
            let addr = canonical(addr);
            if !self.worth_dialling(addr, ours) {
                continue;
            }
            self.remembered.insert(dedupe_key(addr), addr.port());
            self.accepted.push_back(now);
            out.push((addr, flags));
        }
        out
    }

    /// Whether a message arriving at `now` is processed: each one moves the schedule on by
    /// [`MIN_RECEIVE_SPACING`]; a message more than `RECEIVE_BURST - 1` spacings ahead of it is not.
    fn admit(&mut self, now: Instant) -> bool {
        let due = self.schedule.map_or(now, |t| t.max(now));
        if due > now + MIN_RECEIVE_SPACING * (RECEIVE_BURST - 1) {
            return false;
        }
        self.schedule = Some(due + MIN_RECEIVE_SPACING);
        true
    }

    fn worth_dialling(&self, addr: SocketAddr, ours: &[SocketAddr]) -> bool {
        is_peer_addr(&addr)
            && addr != self.sender
            && visible_to(addr.ip(), self.sender.ip())
            && !ours.iter().any(|&o| canonical(o) == addr)
            && !self.remembered.contains_key(&dedupe_key(addr))
    }
}

/// What duplicates are judged by: the IP alone (BEP 11: ignore an IP listed again with another port,
/// a way to aim many clients at one victim), but the whole address on loopback.
fn dedupe_key(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_loopback() {
        addr
    } else {
        SocketAddr::new(addr.ip(), 0)
    }
}

#[cfg(test)]
mod tests;
