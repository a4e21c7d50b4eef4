//! Magnet URIs (BEP 9): building the link `--info` prints. Parsing arrives with metadata exchange
//! (BEP 9/10).

use percent_encoding::utf8_percent_encode;

use crate::types::{InfoHash, URL_COMPONENT};

/// `magnet:?xt=urn:btih:HEX&dn=NAME&tr=...&ws=...`, trackers in tier order, then web seeds.
pub fn magnet_link<'a>(
    info_hash: &InfoHash,
    name: &str,
    trackers: impl IntoIterator<Item = &'a String>,
    web_seeds: impl IntoIterator<Item = &'a String>,
) -> String {
    let mut link = format!("magnet:?xt=urn:btih:{}", info_hash.to_hex());
    let mut param = |key: &str, value: &str| {
        link.push('&');
        link.push_str(key);
        link.push('=');
        link.extend(utf8_percent_encode(value, URL_COMPONENT));
    };
    param("dn", name);
    trackers.into_iter().for_each(|t| param("tr", t));
    web_seeds.into_iter().for_each(|w| param("ws", w));
    link
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_shape_and_escaping() {
        let h = InfoHash([0xab; 20]);
        let link = magnet_link(
            &h,
            "Big Buck & Bunny",
            &["udp://t:80/announce?x=1".to_string()],
            &["https://archive.org/download/".to_string()],
        );
        assert_eq!(
            link,
            "magnet:?xt=urn:btih:abababababababababababababababababababab&dn=Big%20Buck%20%26%20Bunny\
             &tr=udp%3A%2F%2Ft%3A80%2Fannounce%3Fx%3D1&ws=https%3A%2F%2Farchive.org%2Fdownload%2F"
        );
        assert_eq!(
            magnet_link(&h, "a-b_c.d~e", [], []),
            format!("magnet:?xt=urn:btih:{h}&dn=a-b_c.d~e")
        );
    }
}
