//! Web seeds (BEP 19, "GetRight style"): HTTP mirrors of a torrent's files. Pure parts only: the URL
//! of each file on a mirror ([`file_urls`]), turning block reservations into per-file byte ranges
//! ([`plan`]), and a mirror's health: exponential backoff and being dropped after repeated bad data
//! ([`health`]). The HTTP side lives in `session::webseed`.
//!
//! URL rules (BEP 19, and what libtorrent and aria2 do): a single-file torrent's URL is the file
//! itself unless it ends in `/`, in which case the torrent's `name` is appended; a multi-file torrent's
//! URL is a base (a `/` is added when missing) to which `name/path/...` is appended. Every appended
//! component is percent-encoded on its own, so a `/`-free name with spaces or `#` stays one segment.
//! Only `http` and `https` are used; pad files (BEP 47) get no URL since they are never requested.

pub mod health;
pub mod plan;

use percent_encoding::utf8_percent_encode;

use crate::metainfo::Info;
use crate::types::URL_COMPONENT as COMPONENT;

/// Longest web seed URL we accept (with the appended path), like a browser's practical limit.
pub const MAX_URL_LEN: usize = 8192;

/// Why a web seed URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `http://` or `https://` (BEP 19 also allows FTP; we, like libtorrent, do not).
    #[error("only http and https web seeds are supported")]
    Scheme,
    /// Spaces, control characters, or no host.
    #[error("not a valid URL")]
    Malformed,
    /// Longer than [`MAX_URL_LEN`].
    #[error("longer than {MAX_URL_LEN} bytes")]
    TooLong,
}

/// The URL of every file of `info` on the mirror `url`, in torrent order; `None` for pad files.
pub fn file_urls(url: &str, info: &Info) -> Result<Vec<Option<String>>, UrlError> {
    check(url)?;
    let encode = |c: &str| utf8_percent_encode(c, COMPONENT).to_string();
    let urls: Vec<Option<String>> = if info.multi_file {
        let mut base = url.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        base.push_str(&encode(&info.name));
        info.files
            .iter()
            .map(|f| {
                (!f.attr.pad).then(|| {
                    let mut u = base.clone();
                    for c in &f.path {
                        u.push('/');
                        u.push_str(&encode(c));
                    }
                    u
                })
            })
            .collect()
    } else if url.ends_with('/') {
        vec![Some(format!("{url}{}", encode(&info.name)))]
    } else {
        vec![Some(url.to_string())]
    };
    if urls.iter().flatten().any(|u| u.len() > MAX_URL_LEN) {
        return Err(UrlError::TooLong);
    }
    Ok(urls)
}

/// `http(s)://host...` with no whitespace or control characters.
fn check(url: &str) -> Result<(), UrlError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &url[7..]
    } else if lower.starts_with("https://") {
        &url[8..]
    } else {
        return Err(UrlError::Scheme);
    };
    if url.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong);
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::Malformed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::Metainfo;

    fn info(multi: bool) -> Info {
        let bytes: Vec<u8> = if multi {
            b"d4:infod5:filesld6:lengthi3e4:pathl3:sub9:a b#c.txteed4:attr1:p6:lengthi5e4:pathl4:.pad1:5eed6:lengthi2e4:pathl5:z.bineee4:name14:Big Buck Bunny12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee".to_vec()
        } else {
            b"d4:infod6:lengthi3e4:name9:movie.mp412:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee".to_vec()
        };
        Metainfo::from_bytes(&bytes).expect("test torrent").info
    }

    #[test]
    fn multi_file_urls_append_the_name_and_path_each_component_encoded() {
        let urls = file_urls("https://archive.org/download", &info(true)).unwrap();
        assert_eq!(
            urls,
            vec![
                Some("https://archive.org/download/Big%20Buck%20Bunny/sub/a%20b%23c.txt".into()),
                None,
                Some("https://archive.org/download/Big%20Buck%20Bunny/z.bin".into()),
            ]
        );
        let same = file_urls("https://archive.org/download/", &info(true)).unwrap();
        assert_eq!(same, urls, "a trailing slash changes nothing");
    }

    #[test]
    fn single_file_url_is_the_file_unless_it_ends_in_a_slash() {
        let i = info(false);
        assert_eq!(
            file_urls("http://m.example/pub/other-name.mp4", &i).unwrap(),
            vec![Some("http://m.example/pub/other-name.mp4".into())]
        );
        assert_eq!(
            file_urls("http://m.example/pub/", &i).unwrap(),
            vec![Some("http://m.example/pub/movie.mp4".into())]
        );
    }

    #[test]
    fn only_http_and_https_with_a_host() {
        let i = info(false);
        assert_eq!(file_urls("ftp://m/x", &i), Err(UrlError::Scheme));
        assert_eq!(file_urls("file:///etc/passwd", &i), Err(UrlError::Scheme));
        assert_eq!(file_urls("HTTP://M/x", &i).map(|u| u.len()), Ok(1));
        assert_eq!(file_urls("http:///x", &i), Err(UrlError::Malformed));
        assert_eq!(file_urls("http://a b/x", &i), Err(UrlError::Malformed));
        assert_eq!(file_urls("http://a/\nx", &i), Err(UrlError::Malformed));
        assert_eq!(file_urls("http", &i), Err(UrlError::Scheme));
        let long = format!("http://a/{}", "x".repeat(MAX_URL_LEN));
        assert_eq!(file_urls(&long, &i), Err(UrlError::TooLong));
    }
}
