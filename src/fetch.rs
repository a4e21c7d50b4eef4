//! Size-bounded HTTP(S) GET of small documents: a `.torrent` given by URL, tracker replies.
//! Every body is read chunk by chunk and refused as soon as it passes its limit.

use std::time::Duration;

use crate::net::{self, Bind};

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Connection, TLS, DNS or protocol failure.
    #[error("{0}")]
    Http(String),
    /// No answer within the time allowed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The body passed its size limit.
    #[error("response body is larger than the limit of {max} bytes")]
    TooLarge { max: usize },
}

/// A fetched body with its status.
#[derive(Debug)]
pub struct Body {
    /// HTTP status code.
    pub status: u16,
    /// Reason phrase for the status, if standard ("Not Found").
    pub reason: &'static str,
    /// The body, at most the limit given.
    pub bytes: Vec<u8>,
}

/// Most redirects followed (archive.org sends `/download/` to a data node).
pub const MAX_REDIRECTS: usize = 5;

/// Builds an HTTP client: rustls, at most [`MAX_REDIRECTS`] redirects, bounded connect time, every
/// connection from `bind` (a redirect to a literal address it cannot reach is refused). Used for
/// fetches here, by the trackers and by the web seed tasks.
pub fn client(connect_timeout: Duration, bind: &Bind) -> Result<reqwest::Client, FetchError> {
    build(connect_timeout, bind, true)
}

/// Like [`client`], without keeping idle connections: for trackers, asked once every many minutes.
/// A kept connection is then almost always one the tracker has closed meanwhile, and reusing it
/// just as the close arrives fails the request with "connection reset" (seen with opentracker,
/// which closes after each reply).
pub fn client_without_pool(
    connect_timeout: Duration,
    bind: &Bind,
) -> Result<reqwest::Client, FetchError> {
    build(connect_timeout, bind, false)
}

fn build(
    connect_timeout: Duration,
    bind: &Bind,
    pool: bool,
) -> Result<reqwest::Client, FetchError> {
    let guard = bind.clone();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if let Err(why) = net::check_url(&guard, attempt.url()) {
            attempt.error(why)
        } else {
            attempt.follow()
        }
    });
    let builder = reqwest::Client::builder()
        .user_agent(concat!("pixtorrent/", env!("CARGO_PKG_VERSION")))
        .redirect(policy)
        .connect_timeout(connect_timeout);
    let builder = if pool {
        builder
    } else {
        builder.pool_max_idle_per_host(0)
    };
    net::http(builder, bind)
        .build()
        .map_err(|e| FetchError::Http(describe(&e)))
}

/// Refuses a URL `bind` cannot reach (see [`net::check_url`]), or one that does not parse.
pub fn check(bind: &Bind, url: &str) -> Result<(), FetchError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| FetchError::Http(format!("invalid URL: {e}")))?;
    net::check_url(bind, &parsed).map_err(FetchError::Http)
}

/// GETs `url`, whatever the status, reading at most `max` bytes of body, all within `timeout`.
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    max: usize,
    timeout: Duration,
) -> Result<Body, FetchError> {
    tokio::time::timeout(timeout, get_inner(client, url, max))
        .await
        .map_err(|_| FetchError::Timeout(timeout))?
}

async fn get_inner(client: &reqwest::Client, url: &str, max: usize) -> Result<Body, FetchError> {
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| FetchError::Http(describe(&e)))?;
    if resp.content_length().is_some_and(|len| len > max as u64) {
        return Err(FetchError::TooLarge { max });
    }
    let status = resp.status();
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| FetchError::Http(describe(&e)))?
    {
        if bytes.len() + chunk.len() > max {
            return Err(FetchError::TooLarge { max });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Body {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or(""),
        bytes,
    })
}

/// One line from a reqwest error and its causes ("error sending request: connection refused").
pub fn describe(e: &reqwest::Error) -> String {
    let mut msg = if e.is_connect() {
        "connection failed".to_string()
    } else if e.is_redirect() {
        "too many redirects".to_string()
    } else if e.is_body() || e.is_decode() {
        "broken response body".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !msg.contains(&text) {
            last = text;
        }
        source = s.source();
    }
    if !last.is_empty() {
        msg.push_str(": ");
        msg.push_str(&last);
    }
    msg
}
