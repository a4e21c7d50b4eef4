//! Table test over the real-world torrents in `../shared/example-torrents/` (Internet Archive, WebTorrent,
//! libtorrent's v1+v2 hybrid): info-hashes, file counts, sizes and piece counts from its README; the
//! hybrid's v2 side against python3-libtorrent's figures (`tests/data/v2/expected.json`).

use std::path::PathBuf;

use pixtorrent::metainfo::Metainfo;

fn dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PIXTORRENT_EXAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/example-torrents")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (CI always has ../shared)",
            dir.display()
        );
        None
    }
}

fn load(name: &str) -> Option<Metainfo> {
    let path = dir()?.join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(Metainfo::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}")))
}

#[test]
fn table_of_expected_figures() {
    // (file, info-hash, files, total bytes, pieces) from ../shared/example-torrents/README.md
    let table = [
        (
            "AboutBan1935_archive.torrent",
            "3dfebc48f610583da40ec7d0349242ac018ae2c0",
            15,
            888_030_208u64,
            1694u32,
        ),
        (
            "BigBuckBunny_124_archive.torrent",
            "5e7886d42a52ae66da4541d88882a04f9a34a649",
            12,
            441_396_773,
            842,
        ),
        (
            "SKODAOCTAVIA336x280_archive.torrent",
            "d4b197dff199aad447a9a352e31528adbbd97922",
            8,
            5_448_139,
            11,
        ),
        (
            "The WIRED CD - Rip. Sample. Mash. Share.torrent",
            "a88fda5954e89178c372716a6a78b8180ed4dad3",
            18,
            56_070_710,
            856,
        ),
        (
            "bittorrent-v2-hybrid-test.torrent",
            "631a31dd0a46257d5078c0dee4e66e26f73e42ac",
            17,
            898_631_684,
            1715,
        ),
        (
            "flat-url-list.torrent",
            "9da24e606e4ed9c7b91c1772fb5bf98f82bd9687",
            8,
            5_448_139,
            11,
        ),
        (
            "sintel.torrent",
            "08ada5a7a6183aae1e09d831df6748d566095a10",
            11,
            129_302_391,
            987,
        ),
    ];
    for (name, hash, files, total, pieces) in table {
        let Some(m) = load(name) else { return };
        assert_eq!(m.info_hash.to_hex(), hash, "{name}");
        assert_eq!(m.info.files.len(), files, "{name}");
        assert_eq!(m.info.lengths.total(), total, "{name}");
        assert_eq!(m.info.lengths.piece_count(), pieces, "{name}");
        assert_eq!(m.info.piece_hashes.len(), pieces as usize, "{name}");
    }
}

#[test]
fn big_buck_bunny_details() {
    let Some(m) = load("BigBuckBunny_124_archive.torrent") else {
        return;
    };
    assert_eq!(m.info.name, "BigBuckBunny_124");
    assert!(m.info.multi_file);
    assert_eq!(m.info.lengths.piece_length(), 524_288);
    assert_eq!(m.info.lengths.last_piece_len(), 470_565);
    assert_eq!(
        m.info
            .files
            .iter()
            .filter(|f| f.path[0] == "Content")
            .count(),
        4
    );
    assert_eq!(m.created_by.as_deref(), Some("ia_make_torrent"));
    assert_eq!(m.tiers().len(), 2);
    assert_eq!(
        m.url_list,
        [
            "https://archive.org/download/",
            "http://ia600207.us.archive.org/15/items/",
            "http://ia800207.us.archive.org/15/items/"
        ]
    );
    assert!(!m.info.private);
}

#[test]
fn zero_length_file_and_url_list_forms() {
    let Some(m) = load("AboutBan1935_archive.torrent") else {
        return;
    };
    let empty: Vec<_> = m.info.files.iter().filter(|f| f.length == 0).collect();
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].display_path(), "AboutBan1935.asr.srt");
    assert_eq!(m.url_list.len(), 3);

    let Some(list) = load("SKODAOCTAVIA336x280_archive.torrent") else {
        return;
    };
    let Some(flat) = load("flat-url-list.torrent") else {
        return;
    };
    assert_eq!(list.url_list.len(), 3);
    assert_eq!(
        flat.url_list.len(),
        1,
        "a url-list given as a single string"
    );
}

#[test]
fn hybrid_pad_files_and_trackerless() {
    let Some(m) = load("bittorrent-v2-hybrid-test.torrent") else {
        return;
    };
    assert!(m.info.hybrid);
    assert!(m.info.files.iter().any(|f| f.attr.pad));
    assert!(m.info.files.iter().any(|f| f.attr.executable));
    assert_eq!(m.info.lengths.last_piece_len(), 2052);
    assert!(m.tiers().is_empty());

    let Some(w) = load("The WIRED CD - Rip. Sample. Mash. Share.torrent") else {
        return;
    };
    assert!(w.announce.is_none());
    assert_eq!(w.url_list, ["https://webtorrent.io/torrents/"]);

    let Some(s) = load("sintel.torrent") else {
        return;
    };
    assert!(s.tiers().iter().flatten().any(|u| u.starts_with("wss://")));
}

#[test]
fn the_hybrid_v2_side_matches_libtorrent() {
    use pixtorrent::metainfo::MetaVersion;
    let Some(m) = load("bittorrent-v2-hybrid-test.torrent") else {
        return;
    };
    // v1 from the README; v2 and every root from python3-libtorrent 2.0.8's torrent_info
    // (`info_hashes()`, `files().root(i)`), recorded by tests/data/v2/make_fixtures.py.
    let lt: serde_json::Value =
        serde_json::from_str(include_str!("data/v2/expected.json")).unwrap();
    let lt = &lt["bittorrent-v2-hybrid-test"];
    assert_eq!(m.info.version(), MetaVersion::Hybrid);
    assert_eq!(
        m.info_hash.to_hex(),
        "631a31dd0a46257d5078c0dee4e66e26f73e42ac"
    );
    assert_eq!(m.info_hash.to_hex(), lt["v1"].as_str().unwrap());
    let v2 = m.info_hash_v2.expect("a v2 info-hash");
    assert_eq!(
        v2.to_hex(),
        "d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb"
    );
    assert_eq!(v2.to_hex(), lt["v2"].as_str().unwrap());
    let files = lt["files"].as_array().unwrap();
    assert_eq!(files.len(), m.info.files.len());
    for (i, f) in files.iter().enumerate() {
        let root = m.info.pieces_root(i).map(|r| pixtorrent::types::hex(&r));
        assert_eq!(root.as_deref(), f["root"].as_str(), "file {i}");
        assert_eq!(m.info.files[i].offset, f["offset"].as_u64().unwrap());
    }
    // The piece layers hash up to the roots (checked at parse), and cover every v2 piece, which are
    // the v1 pieces: the last one, 2,052 bytes, ends tbl-tint.mpg.
    assert!(m.info.has_piece_layers());
    assert_eq!(m.info.v2_pieces().count(), 1715);
    assert!((0..1715).all(|i| m.info.v2_piece_hash(i).is_some()));
    let last = m.info.v2_piece(1714).unwrap();
    assert_eq!(m.info.files[last.file].display_path(), "tbl-tint.mpg");
    assert_eq!((last.index_in_file, last.len), (221, 2052));
}

#[test]
fn web_seed_urls_of_real_torrents() {
    use pixtorrent::webseed::file_urls;
    let Some(m) = load("BigBuckBunny_124_archive.torrent") else {
        return;
    };
    let avi = m
        .info
        .files
        .iter()
        .position(|f| f.display_path() == "Content/big_buck_bunny_720p_surround.avi")
        .expect("the avi");
    let urls: Vec<String> = m
        .url_list
        .iter()
        .map(|u| file_urls(u, &m.info).unwrap()[avi].clone().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "https://archive.org/download/BigBuckBunny_124/Content/big_buck_bunny_720p_surround.avi",
            "http://ia600207.us.archive.org/15/items/BigBuckBunny_124/Content/big_buck_bunny_720p_surround.avi",
            "http://ia800207.us.archive.org/15/items/BigBuckBunny_124/Content/big_buck_bunny_720p_surround.avi",
        ]
    );

    // A name with spaces and dots: each component percent-encoded on its own.
    let Some(w) = load("The WIRED CD - Rip. Sample. Mash. Share.torrent") else {
        return;
    };
    let first = file_urls(&w.url_list[0], &w.info).unwrap()[0]
        .clone()
        .unwrap();
    assert!(
        first.starts_with(
            "https://webtorrent.io/torrents/The%20WIRED%20CD%20-%20Rip.%20Sample.%20Mash.%20Share/"
        ),
        "{first}"
    );

    // Pad files (BEP 47) get no URL: they are never requested.
    let Some(h) = load("bittorrent-v2-hybrid-test.torrent") else {
        return;
    };
    let urls = file_urls("http://mirror.example/", &h.info).unwrap();
    for (f, u) in h.info.files.iter().zip(&urls) {
        assert_eq!(f.attr.pad, u.is_none(), "{}", f.display_path());
    }
    assert!(urls.iter().any(Option::is_none));
}
