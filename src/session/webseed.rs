//! Downloading from web seeds (BEP 19): a few tasks per mirror, each a client of the picker like a
//! peer. A task reserves a run of missing pieces ([`Picker::pick_run`]), fetches it with one HTTP
//! `Range` request per file it spans, and hands the blocks to the torrent as they stream in, so they
//! are verified and stored like any peer's. Failures back the mirror off; bad answers strike it and
//! three strikes drop it for the session (see [`crate::webseed::health`]).
//!
//! [`Picker::pick_run`]: crate::picker::Picker::pick_run

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT_ENCODING, CONTENT_RANGE, RANGE};
use reqwest::StatusCode;

use super::state::{Complete, Source};
use super::Ctx;
use crate::fetch::describe;
use crate::metainfo::Metainfo;
use crate::picker::PeerKey;
use crate::types::{BlockRef, BLOCK_LEN};
use crate::webseed::health::Failure;
use crate::webseed::plan::{self, Assembler, Segment};

/// Bytes asked for per reservation (or one piece if larger): long enough that the request round trip
/// is small next to the transfer, short enough that a slow mirror holds back little at the end.
pub const REQUEST_BYTES: u64 = 4 * 1024 * 1024;
/// Time for a mirror to answer a request with its headers.
pub const HEADERS_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest silence inside a response body.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause when there is nothing to ask a mirror for (everything missing is reserved elsewhere).
const IDLE_POLL: Duration = Duration::from_millis(100);

/// One mirror: its index in the torrent's web seed list and the URL of each file (`None`: pad file).
pub struct Mirror {
    /// Index into [`super::state::Torrent::web`].
    pub index: usize,
    /// Per file, in torrent order.
    pub urls: Vec<Option<String>>,
}

/// The web seeds of the session, recorded in the torrent state; those with unusable URLs are recorded
/// as dropped and get no task.
pub fn mirrors(ctx: &Ctx, meta: &Metainfo) -> Vec<Mirror> {
    let mut t = ctx.lock();
    let mut out = Vec::new();
    for url in &ctx.config.web_seeds {
        let mut health = crate::webseed::health::Health::default();
        let usable = crate::fetch::check(&ctx.config.net, url).map_err(|e| e.to_string());
        match usable
            .and_then(|()| crate::webseed::file_urls(url, &meta.info).map_err(|e| e.to_string()))
        {
            Ok(urls) => out.push(Mirror {
                index: t.web().len(),
                urls,
            }),
            Err(e) => {
                tracing::warn!(url = %crate::text::line(url), "web seed not used: {e}");
                health.drop_now(e.to_string());
            }
        }
        t.add_web_seed(super::state::WebSeed::new(
            url.clone(),
            health,
            ctx.lengths.piece_count(),
        ));
    }
    out
}

/// Why a request ended early: a failure of the mirror, or (`kind: None`) our own decision.
struct Failed {
    kind: Option<Failure>,
    why: String,
}

fn bad(why: impl Into<String>) -> Failed {
    Failed {
        kind: Some(Failure::Bad),
        why: why.into(),
    }
}

fn transient(why: impl Into<String>) -> Failed {
    Failed {
        kind: Some(Failure::Transient),
        why: why.into(),
    }
}

fn unreachable(why: impl Into<String>) -> Failed {
    Failed {
        kind: Some(Failure::Unreachable),
        why: why.into(),
    }
}

fn stopped(why: &str) -> Failed {
    Failed {
        kind: None,
        why: why.into(),
    }
}

/// One connection's worth of work on `mirror`, until the torrent is complete, the mirror is dropped,
/// or the session shuts down.
pub async fn connection(ctx: Arc<Ctx>, client: reqwest::Client, mirror: Arc<Mirror>) {
    let key = ctx.lock().new_key();
    let lengths = ctx.lengths;
    let request = REQUEST_BYTES.max(u64::from(lengths.piece_length()));
    let max_blocks = request.div_ceil(u64::from(BLOCK_LEN)) as usize;
    let mut shutdown = ctx.shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let wait = ctx
            .lock()
            .web()
            .get(mirror.index)
            .and_then(|w| w.health().wait(crate::session::now()));
        let Some(wait) = wait else {
            return;
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let blocks = {
            let mut t = ctx.lock();
            if t.picker().is_complete() {
                return;
            }
            t.pick_web(key, mirror.index, max_blocks)
        };
        if blocks.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        // --max-download-rate: the run's bytes are reserved; in debt, wait before asking.
        let bytes: u64 = blocks.iter().map(|b| u64::from(b.len)).sum();
        let wait = ctx.engine.limits.down(bytes);
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {
                    ctx.lock().unrequest(key, &blocks);
                    return;
                }
            }
        }
        let mut pending = Vec::new();
        let result = fetch(&ctx, &client, &mirror, key, &blocks, &mut pending).await;
        let mut t = ctx.lock();
        t.unrequest(key, &pending);
        let Some(web) = t.web_seed_mut(mirror.index) else {
            return;
        };
        let url = web.url().to_string();
        let health = web.health_mut();
        match result {
            Ok(()) => health.success(),
            Err(Failed { kind: None, why }) => {
                tracing::trace!(url = %url, %why, "web seed request stopped");
            }
            Err(Failed {
                kind: Some(kind),
                why,
            }) => {
                tracing::debug!(url = %url, %why, "web seed request failed");
                if health.failure(kind, &why, crate::session::now()) {
                    tracing::warn!(url = %crate::text::line(&url), why = health.dropped().unwrap_or(""), "web seed dropped");
                }
            }
        }
    }
}

/// Fetches `blocks` from `mirror`, delivering each block as it completes; `pending` gets the blocks
/// not delivered.
async fn fetch(
    ctx: &Arc<Ctx>,
    client: &reqwest::Client,
    mirror: &Mirror,
    key: PeerKey,
    blocks: &[BlockRef],
    pending: &mut Vec<BlockRef>,
) -> Result<(), Failed> {
    let runs = plan::runs(ctx.lengths, blocks);
    for (k, run) in runs.iter().enumerate() {
        let mut asm = Assembler::new(&run.blocks);
        let mut result = Ok(());
        for seg in plan::segments(&ctx.files, run.start, run.len) {
            result = match mirror.urls.get(seg.file) {
                Some(Some(url)) if !seg.pad => {
                    get_range(ctx, client, url, seg, |data| {
                        deliver(ctx, mirror, key, &mut asm, data)
                    })
                    .await
                }
                _ => {
                    // Pad files are zeros and never requested (BEP 47).
                    let zeros = vec![0u8; BLOCK_LEN as usize];
                    let mut left = seg.len;
                    let mut flow = Ok(());
                    while left > 0 && flow.is_ok() {
                        let n = left.min(zeros.len() as u64) as usize;
                        flow = deliver(ctx, mirror, key, &mut asm, &zeros[..n]);
                        left -= n as u64;
                    }
                    flow
                }
            };
            if result.is_err() {
                break;
            }
        }
        if result.is_err() || !asm.is_done() {
            pending.extend(asm.pending());
            for later in &runs[k + 1..] {
                pending.extend_from_slice(&later.blocks);
            }
            return result.and(Err(bad("the response ended early")));
        }
    }
    Ok(())
}

/// Hands the blocks `data` completes to the torrent (one lock per chunk) and verifies finished pieces.
/// Stops the request once the mirror has been dropped meanwhile (its pieces failed), or when every
/// block still to come has arrived from elsewhere (endgame).
fn deliver(
    ctx: &Arc<Ctx>,
    mirror: &Mirror,
    key: PeerKey,
    asm: &mut Assembler,
    data: &[u8],
) -> Result<(), Failed> {
    let mut complete: Vec<Complete> = Vec::new();
    let mut flow = Ok(());
    {
        let mut guard = None;
        let mut wasted = None;
        asm.feed(data, |block, bytes| {
            let t = guard.get_or_insert_with(|| ctx.lock());
            wasted.get_or_insert(ctx.counters.totals().wasted);
            let piece_len = ctx.lengths.piece_len(block.piece);
            complete.extend(t.block(key, Source::Web(mirror.index), block, bytes, piece_len));
        });
        if let Some(t) = guard {
            if t.web().get(mirror.index).is_none_or(|w| !w.live()) {
                flow = Err(stopped("dropped"));
            } else if wasted.is_some_and(|w| ctx.counters.totals().wasted > w)
                && !asm.pending().any(|b| t.picker().wants_block(b))
            {
                flow = Err(stopped("the rest arrived from elsewhere"));
            }
        }
    }
    for c in complete {
        super::verify::spawn(ctx.clone(), c);
    }
    flow
}

/// GETs `seg` of the file at `url` with a `Range` request and streams its bytes to `sink`.
async fn get_range(
    ctx: &Ctx,
    client: &reqwest::Client,
    url: &str,
    seg: Segment,
    mut sink: impl FnMut(&[u8]) -> Result<(), Failed>,
) -> Result<(), Failed> {
    let last = seg.offset + seg.len - 1;
    let file_len = ctx.files[seg.file].length;
    let request = client
        .get(url)
        .header(RANGE, format!("bytes={}-{last}", seg.offset))
        .header(ACCEPT_ENCODING, "identity")
        .send();
    let mut resp = match tokio::time::timeout(HEADERS_TIMEOUT, request).await {
        Err(_) => return Err(unreachable("no answer within 20 s")),
        Ok(Err(e)) if e.is_redirect() => return Err(bad(describe(&e))),
        Ok(Err(e)) if e.is_connect() || e.is_timeout() => return Err(unreachable(describe(&e))),
        Ok(Err(e)) => return Err(transient(describe(&e))),
        Ok(Ok(resp)) => resp,
    };
    let status = resp.status();
    match status {
        StatusCode::PARTIAL_CONTENT => {
            let header = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok());
            match header.and_then(parse_content_range) {
                Some((first, _, total))
                    if first == seg.offset && total.is_none_or(|t| t == file_len) => {}
                Some(_) => {
                    return Err(bad(format!(
                        "answered another range ({}) than bytes={}-{last} of {file_len}",
                        header.unwrap_or(""),
                        seg.offset
                    )))
                }
                None => return Err(bad("206 without a valid Content-Range")),
            }
        }
        StatusCode::OK if seg.offset == 0 && seg.len == file_len => {}
        StatusCode::OK => return Err(bad("ignores Range (200 with the whole file)")),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            return Err(transient(format!("HTTP {s}")))
        }
        s => return Err(bad(format!("HTTP {s}"))),
    }
    let mut left = seg.len;
    while left > 0 {
        let chunk = match tokio::time::timeout(READ_TIMEOUT, resp.chunk()).await {
            Err(_) => return Err(bad("stalled: no data for 20 s")),
            Ok(Err(e)) => return Err(transient(describe(&e))),
            Ok(Ok(None)) => {
                return Err(bad(format!(
                    "short body: {} of {} bytes",
                    seg.len - left,
                    seg.len
                )))
            }
            Ok(Ok(Some(c))) => c,
        };
        let n = (chunk.len() as u64).min(left) as usize;
        left -= n as u64;
        sink(&chunk[..n])?;
    }
    Ok(())
}

/// `bytes FIRST-LAST/TOTAL` (TOTAL may be `*`) → (first, last, total).
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let first = a.trim().parse().ok()?;
    let last = b.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    (first <= last).then_some((first, last, total))
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_range_is_read_strictly() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000"),
            Some((0, 99, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(parse_content_range("bytes 9-5/100"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes -1-2/3"), None);
    }
}
