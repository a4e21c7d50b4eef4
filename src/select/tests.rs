use super::glob::MAX_PATTERN_LEN;
use super::*;
use crate::metainfo::FileAttr;

fn g(p: &str) -> Glob {
    Glob::new(p).unwrap()
}

#[test]
fn a_pattern_without_a_slash_matches_the_name_at_any_depth() {
    let p = g("*.mp4");
    assert!(p.matches("a.mp4"));
    assert!(p.matches("Content/a.mp4"));
    assert!(p.matches("x/y/z/.mp4"));
    assert!(!p.matches("a.mp4.part"));
    assert!(!p.matches("Content.mp4/a.txt"));
    assert!(g("a?c").matches("dir/abc"));
    assert!(!g("a?c").matches("a/c"));
}

#[test]
fn a_pattern_with_a_slash_matches_the_whole_path() {
    let p = g("Content/*.mp4");
    assert!(p.matches("Content/a.mp4"));
    assert!(!p.matches("Content/sub/a.mp4"), "* does not cross /");
    assert!(!p.matches("Other/Content/a.mp4"), "anchored at the top");
    assert!(g("/a.txt").matches("a.txt"));
    assert!(!g("/a.txt").matches("d/a.txt"), "a leading / anchors");
    assert!(g("*/*").matches("a/b"));
    assert!(!g("*/*").matches("a/b/c"));
}

#[test]
fn double_star_crosses_directories() {
    let p = g("**/*.srt");
    assert!(p.matches("a.srt"), "**/ matches no directory too");
    assert!(p.matches("x/y/a.srt"));
    let p = g("Content/**/b");
    assert!(p.matches("Content/b"));
    assert!(p.matches("Content/x/y/b"));
    assert!(!p.matches("Content/xb"), "**/ stands for whole directories");
    let p = g("Content/**");
    assert!(p.matches("Content/a/b/c"));
    assert!(!p.matches("Other/a"));
    // Without a `/`, only the name is matched: `**` is then a plain `*`.
    assert!(g("a**b").matches("x/axyb"));
    assert!(!g("a**b").matches("a/x/b"));
    assert!(
        g("d/a**b").matches("d/a/x/b"),
        "inside a path `**` crosses directories"
    );
    assert!(g("***").matches("x/y"));
}

#[test]
fn classes_and_escapes() {
    let p = g("disc[1-3]/*");
    assert!(p.matches("disc2/a"));
    assert!(!p.matches("disc4/a"));
    assert!(g("[!a]*").matches("b"));
    assert!(!g("[!a]*").matches("a"));
    assert!(g("[^a]").matches("z"));
    assert!(g("[]]").matches("]"));
    assert!(g("[a-]").matches("-"));
    assert!(!g("a[/]b").matches("a/b"), "a class never matches /");
    assert!(g(r"\*.txt").matches("*.txt"));
    assert!(!g(r"\*.txt").matches("a.txt"));
    assert!(g("Ünïcödé*").matches("dir/Ünïcödé.txt"));
}

#[test]
fn bad_patterns_are_refused_with_a_reason() {
    for (p, why) in [
        ("", "it is empty"),
        ("[abc", "a '[' is not closed"),
        ("a\\", "it ends with a lone '\\'"),
        ("[z-a]", "a range in '[...]' runs backwards"),
    ] {
        let e = Glob::new(p).unwrap_err();
        assert_eq!(e.why, why, "{p}");
    }
    assert!(Glob::new(&"a".repeat(MAX_PATTERN_LEN + 1)).is_err());
    let e = Glob::new("[\u{1b}").unwrap_err().to_string();
    assert!(!e.contains('\u{1b}'), "the message is one safe line: {e:?}");
}

#[test]
fn long_paths_and_patterns_stay_linear() {
    let path = "a/".repeat(2000) + "b";
    let p = g(&"*a".repeat(500));
    let t = std::time::Instant::now();
    assert!(!p.matches(&path));
    assert!(g("**/b").matches(&path));
    assert!(t.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn index_lists() {
    assert_eq!(parse_indexes("1").unwrap(), vec![1..=1]);
    assert_eq!(
        parse_indexes("1, 3-5 ,9").unwrap(),
        vec![1..=1, 3..=5, 9..=9]
    );
    for bad in ["", "0", "1,,2", "5-3", "a", "-1", "1-", "4294967296", "1.5"] {
        assert!(parse_indexes(bad).is_err(), "{bad:?}");
    }
    let many = vec!["1"; MAX_RANGES + 1].join(",");
    assert!(parse_indexes(&many).is_err());
}

/// Files of these sizes in order; names `f0`, `f1`, … in directory `d` for odd indexes; a size
/// given as `-n` is a pad file of n bytes.
fn files(sizes: &[i64]) -> (Vec<FileEntry>, u64) {
    let mut offset = 0u64;
    let mut out = Vec::new();
    for (i, &s) in sizes.iter().enumerate() {
        let length = s.unsigned_abs();
        let name = format!("f{i}");
        out.push(FileEntry {
            path: if i % 2 == 1 {
                vec!["d".to_string(), name]
            } else {
                vec![name]
            },
            length,
            offset,
            attr: FileAttr {
                pad: s < 0,
                ..FileAttr::default()
            },
        });
        offset += length;
    }
    (out, offset)
}

fn spec(only: &[&str], exclude: &[&str], idx: &str) -> Spec {
    Spec {
        only: only.iter().map(|p| g(p)).collect(),
        exclude: exclude.iter().map(|p| g(p)).collect(),
        indexes: if idx.is_empty() {
            Vec::new()
        } else {
            parse_indexes(idx).unwrap()
        },
    }
}

fn resolve(sizes: &[i64], piece: u32, s: &Spec) -> Result<Selection, SelectError> {
    let (f, total) = files(sizes);
    Selection::resolve(s, &f, Lengths::new(total, piece).unwrap())
}

fn ones(b: &Bitfield) -> Vec<u32> {
    b.ones().collect()
}

#[test]
fn no_option_selects_everything() {
    let s = resolve(&[100, 0, 50], 64, &Spec::default()).unwrap();
    assert!(s.is_all());
    assert_eq!(ones(s.wanted()), vec![0, 1, 2]);
    assert_eq!(ones(s.storable()), vec![0, 1, 2]);
    assert_eq!(s.selected_bytes(), 150);
    assert_eq!(s.selected_count(), 3);
}

#[test]
fn the_boundary_rule() {
    // Pieces of 64: f0 = [0,100) pieces 0-1; f1 = [100,300) pieces 1-4; f2 = [300,320) piece 4;
    // f3 = [320,448) pieces 5-6.
    let sizes = [100, 200, 20, 128];
    let s = resolve(&sizes, 64, &spec(&[], &[], "2")).unwrap();
    assert_eq!(
        s.roles(),
        &[
            Role::Boundary,
            Role::Selected,
            Role::Boundary,
            Role::Skipped
        ]
    );
    assert_eq!(ones(s.wanted()), vec![1, 2, 3, 4]);
    assert_eq!(ones(s.storable()), vec![0, 1, 2, 3, 4]);
    assert_eq!(s.selected_bytes(), 200);
    // f3 alone starts on a piece boundary: nothing else is touched.
    let s = resolve(&sizes, 64, &spec(&[], &[], "4")).unwrap();
    assert_eq!(
        s.roles(),
        &[Role::Skipped, Role::Skipped, Role::Skipped, Role::Selected]
    );
    assert_eq!(ones(s.wanted()), vec![5, 6]);
    assert_eq!(ones(s.storable()), vec![5, 6]);
}

#[test]
fn a_file_inside_one_piece_makes_both_neighbours_boundary() {
    // One piece of 1000 holds all three files.
    let s = resolve(&[10, 20, 30], 1000, &spec(&["f1"], &[], "")).unwrap();
    assert_eq!(s.roles(), &[Role::Boundary, Role::Selected, Role::Boundary]);
    assert_eq!(ones(s.wanted()), vec![0]);
}

#[test]
fn pad_files_keep_boundaries_apart() {
    // f0 = 100 bytes, a 28-byte pad to the next 64 boundary (128), f2 = 64 bytes: piece 2 only.
    let s = resolve(&[100, -28, 64], 64, &spec(&["f2"], &[], "")).unwrap();
    assert_eq!(s.roles(), &[Role::Skipped, Role::Pad, Role::Selected]);
    assert_eq!(ones(s.wanted()), vec![2]);
    assert_eq!(ones(s.storable()), vec![2]);
    // A pad file is never selected, even by index or by a pattern that matches it.
    let s = resolve(&[100, -28, 64], 64, &spec(&["*"], &[], "2")).unwrap();
    assert_eq!(s.roles()[1], Role::Pad);
    assert_eq!(s.selected_count(), 2);
    assert!(matches!(
        resolve(&[100, -28, 64], 64, &spec(&[], &[], "2")),
        Err(SelectError::Nothing)
    ));
}

#[test]
fn zero_length_files() {
    // A selected empty file has no piece; an unselected one is skipped and touches none.
    let s = resolve(&[64, 0, 64], 64, &spec(&[], &[], "2")).unwrap();
    assert_eq!(s.roles(), &[Role::Skipped, Role::Selected, Role::Skipped]);
    assert_eq!(s.wanted().count(), 0);
    assert_eq!(s.selected_bytes(), 0);
    let s = resolve(&[64, 0, 64], 64, &spec(&[], &[], "1")).unwrap();
    assert_eq!(s.roles(), &[Role::Selected, Role::Skipped, Role::Skipped]);
    assert_eq!(ones(s.wanted()), vec![0]);
}

#[test]
fn only_exclude_and_indexes_combine() {
    // Paths: f0, d/f1, f2, d/f3, f4.
    let sizes = [64, 64, 64, 64, 64];
    let roles = |s: &Spec| {
        resolve(&sizes, 64, s)
            .unwrap()
            .roles()
            .iter()
            .map(|r| *r == Role::Selected)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        roles(&spec(&["d/*"], &[], "")),
        [false, true, false, true, false]
    );
    assert_eq!(
        roles(&spec(&["d/*"], &[], "5")),
        [false, true, false, true, true],
        "--only and --select-file add up"
    );
    assert_eq!(
        roles(&spec(&[], &["f3"], "")),
        [true, true, true, false, true],
        "--exclude alone keeps the rest"
    );
    assert_eq!(
        roles(&spec(&["d/*"], &["*3"], "1-2")),
        [true, true, false, false, false],
        "--exclude wins"
    );
    assert_eq!(
        roles(&spec(&["**"], &[], "")),
        [true, true, true, true, true]
    );
}

#[test]
fn refusals() {
    let sizes = [64, 64, 64];
    assert_eq!(
        resolve(&sizes, 64, &spec(&[], &[], "2-4")),
        Err(SelectError::NoSuchFile { index: 4, files: 3 })
    );
    assert_eq!(
        resolve(&sizes, 64, &spec(&[], &[], "7")),
        Err(SelectError::NoSuchFile { index: 7, files: 3 })
    );
    assert_eq!(
        resolve(&sizes, 64, &spec(&["*.mkv"], &[], "")),
        Err(SelectError::Nothing)
    );
    assert_eq!(
        resolve(&sizes, 64, &spec(&[], &["*"], "")),
        Err(SelectError::Nothing)
    );
    let e = SelectError::NoSuchFile { index: 7, files: 3 }.to_string();
    assert!(e.contains("--info"), "{e}");
}

#[test]
fn the_last_short_piece() {
    // 130 bytes in pieces of 64: the last piece holds 2 bytes of f1.
    let s = resolve(&[120, 10], 64, &spec(&["d/f1"], &[], "")).unwrap();
    assert_eq!(ones(s.wanted()), vec![1, 2]);
    assert_eq!(s.roles(), &[Role::Boundary, Role::Selected]);
}
