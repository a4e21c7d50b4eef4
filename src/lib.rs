//! # pixtorrent
//!
//! A BitTorrent client (and a Redis-backed HTTP/UDP tracker) built to interoperate with libtorrent,
//! Transmission, aria2 and rqbit. This crate doc is the living architecture map; `DESIGN.md` tells the
//! why.
//!
//! ## Components
//! | module | responsibility | pure? |
//! |---|---|---|
//! | [`text`] | outside text made safe to print: the one `sanitize`, and the log writer that applies it | yes |
//! | [`bencode`] | the one place that touches `bip_bencode`: decode with limits, raw spans, encode | yes |
//! | [`types`] | `InfoHash`, `InfoHashV2`, `InfoHashes` (what a link names, what metadata must match), `PeerId`, `PieceIndex`, `BlockRef`, `Lengths` (all piece/block arithmetic) | yes |
//! | [`merkle`] | BEP 52 Merkle trees over SHA-256: zero-padded 16 KiB leaves, a file's `pieces root` and piece layer, proofs (uncle hashes) and the `hashes` reply | yes |
//! | [`metainfo`] | `.torrent` -> `Metainfo`; info-hashes (SHA-1, and SHA-256 for BEP 52) over the raw `info` bytes; validation; v2 `file tree`, `piece layers`, a hybrid's two halves checked against each other, the v2 piece layout | yes |
//! | [`magnet`] | magnet URIs (BEP 9): parse (`xt` `btih` hex/base32 and BEP 52 `btmh`, `dn`, `tr`, `ws`, `x.pe`) and build | yes |
//! | [`net`] | every socket bound as `--bind` / `--interface` say: listener, peer connections, UDP, HTTP client | IO |
//! | [`fetch`] | size-bounded HTTP GET of small documents (a `.torrent` by URL, tracker replies) | IO |
//! | [`tracker`] | tracker client: HTTP (BEP 3/23/7/48), UDP (BEP 15), tiers (BEP 12), probing; `tracker::proto`, the wire vocabulary the server shares (events, compact peers, BEP 15 header and datagrams, bencoded replies) | codecs pure, clients IO |
//! | [`report`] | what `--info` and `--announce-only` print, text and JSON | yes |
//! | [`bitfield`] | one bit per piece, as the `bitfield` message carries it | yes |
//! | [`wire`] | 68-byte handshake, BEP 3 messages, framing limits, BEP 6 Fast-extension messages and rules (allowed-fast set, have all/none), BEP 10 handshake and extension registry, BEP 9 `ut_metadata` codec and assembler, BEP 11 `ut_pex` codec and rules, BEP 52 `hash request`/`hashes`/`hash reject` (decoded only by a `Codec::with_v2`) the answer to a request given the file's tree, the requests that fetch a piece layer and the check of their replies | yes |
//! | [`select`] | file selection: `--only`/`--exclude` patterns, `--select-file` indexes; the wanted pieces and each file's role (selected, boundary: sparse, skipped: never created) | yes |
//! | [`picker`] | availability, piece order, the wanted-pieces mask, block reservations, endgame | yes |
//! | [`pipeline`] | per-peer request window (baseline 10, grows with the BDP) and service timing (when a peer counts as stalled) | yes |
//! | [`ratelimit`] | `--max-download-rate` / `--max-upload-rate`: the token bucket (debt allowed, quarter-second burst) and the rate parser | yes |
//! | [`outstanding`] | one peer's requests in flight: latency per arrival, release to other peers when it stalls | yes |
//! | [`storage`] | `Storage` trait, piece→file layout (pure), the piece check by format (`storage::check`, pure: SHA-1 for v1, the SHA-256 Merkle root of the piece's own file bytes for v2, both for a hybrid), mmap files, the process's pool of open files (LRU, `--max-open-files`), parallel re-check, the fast-resume file (codec and trust rule pure) | layout and check pure, rest IO |
//! | [`paths`] | the state directory (`$XDG_STATE_HOME/pixtorrent`): DHT table, resume files | IO |
//! | [`webseed`] | BEP 19 mirrors: file URLs, blocks → per-file `Range` requests → blocks, backoff and strikes | yes |
//! | [`session`] | torrents alive on one process-level `engine` (listener routing handshakes by info-hash, a hybrid under its v1 and truncated v2 ones; tracker client, global limit); per torrent a `lifecycle` state machine (pure) driven by `run`: `magnet` + `metadata` (BEP 9 fetch; `metadata::conn` one source, MSE first), re-check, then the swarm: dialling (`dial`: TCP, uTP after 1 s), connecting (`link`), peer tasks (`peer`, with `ut_metadata`, `ut_pex` and BEP 6 `fast`), web seed tasks (`webseed`), BEP 52 `hashes` (the files' Merkle trees by `pieces root`, served to `hash request`s; `hashes::layers`: a magnet's piece layers fetched and checked before the download), per-block `blame` of a failed v2 piece (its leaf hashes by `hash request`, pure rules), fast `resume` (trusted pieces at start, saved every 30 s), `stall` (why nothing arrives, pure), the `state` behind methods (pieces, peers, discovery, web seeds), `counters` outside the lock, address `pool`, `choker`, uploads, announcers, dialler, verification | IO (rules pure) |
//! | [`udp`] | the UDP port of `--port`, shared by the DHT and uTP: one receive loop per socket hands each datagram to its owner by its first byte | IO |
//! | [`utp`] | uTP (BEP 29): header codec and the KRPC/uTP rule (pure); `librqbit-utp` sockets over the shared port; `AnyStream` (TCP or uTP) | codec pure, rest IO |
//! | [`dht`] | mainline DHT (BEP 5): ids and XOR metric, KRPC codec, routing table, lookups, tokens, peer store (pure); the UDP node and its saved state (IO) | core pure, node IO |
//! | [`mse`] | Message Stream Encryption: crypto (768-bit DH, req1/req2/req3, RC4 with 1024 bytes discarded), the handshake state machines, the RC4 peer stream (driven on sockets by `session::mse`) | crypto and handshake pure, stream IO |
//! | [`ui`] | progress bar or plain lines, the closing summary | IO |
//! | [`create`] | `pixtorrent create`: a v1, v2 (`create::v2`: BEP 52 `file tree`, `piece layers`) or hybrid (BEP 47 pad files) torrent of a file or directory, laid out as libtorrent lays it out, hashed on every core, read back before it is returned | layout and encoding pure, hashing IO |
//! | [`tracker_server`] | `pixtorrent-tracker`: query/reply/swarm rules (pure), memory and Redis stores, HTTP and UDP | core pure, rest IO |
//!
//!
//! ## Who may import whom (strictly downward)
//! - `bencode`, `types`, `net`, `text`, `paths`: nothing from the crate. Anything may import `text`.
//! - `fetch`: net.
//! - `merkle`: types.
//! - `metainfo`: bencode, merkle, types, text. `magnet`: metainfo (its bounds), types.
//! - `tracker` (client): bencode, types, fetch, net. Its `proto`: bencode, types only (the server uses
//!   it, so it knows nothing of the client around it).
//! - `report`: metainfo, magnet, tracker, types (it only formats).
//! - `ratelimit`: nothing.
//! - `bitfield`: nothing. `wire`: bencode (BEP 10 handshake), bitfield, merkle (BEP 52 proofs), types. `picker`, `pipeline`, `outstanding`: bitfield, types.
//! - `select`: bitfield, metainfo, types, text.
//! - `storage`: bitfield, merkle (the v2 piece check), metainfo, select (file roles), types. `webseed`: metainfo, types.
//! - `utp`: net (`PeerStream`, `Bind`), the `udp` port (librqbit-utp). `udp`: net, `utp::packet`.
//! - `dht`: bencode, net, `udp` (its node's sockets), text; nothing from `session`, which uses it.
//! - `mse`: net (`PeerStream`) only (sha1, rc4, num-bigint).
//! - `session`: everything above (`utp` through `session::dial` and the engine only). `ui`: report,
//!   session (the progress `Snapshot`, the `Outcome`, the lifecycle `Phase`). `bin/*`: anything;
//!   `anyhow` lives only there.
//! - Inside `session`: `engine` knows torrents only as `Ctx`s; `lifecycle`, `pool`, `choker`,
//!   `counters` import nothing from `session`; `state` imports `pool`, `choker`, `counters` and the
//!   session clock; tasks
//!   (`link`, `peer`, `webseed`, `announce`, `loops`) change the state only through its methods.
//! - `create`: bencode, merkle, metainfo (to read back what it made), storage (the v1 piece layout), types.
//! - Nothing imports `session` but `ui`, the binaries and tests.
//! - `tracker_server`: types (`InfoHash`, `PeerId`), `tracker::proto` (events, compact peers, BEP 15
//!   datagrams, the bencoded replies, which it writes through `bencode`), and `bencode` directly in
//!   its tests; the rest of the tracker client appears only in its tests, to read its replies back.

pub mod bencode;
pub mod bitfield;
pub mod create;
pub mod dht;
pub mod fetch;
pub mod magnet;
pub mod merkle;
pub mod metainfo;
pub mod mse;
pub mod net;
pub mod outstanding;
pub mod paths;
pub mod picker;
pub mod pipeline;
pub mod ratelimit;
pub mod report;
pub mod select;
pub mod session;
pub mod storage;
pub mod text;
pub mod tracker;
pub mod tracker_server;
pub mod types;
pub mod udp;
pub mod ui;
pub mod utp;
pub mod webseed;
pub mod wire;
