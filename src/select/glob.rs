//! Shell-style patterns over paths inside a torrent (`Content/*.mp4`, `**/*.srt`, `disc?/[a-c]*`),
//! matched as gitignore matches them: a pattern without `/` matches a file's name at any depth, one
//! with `/` matches the whole path from the torrent's top. Pure; linear in pattern × path.

use std::fmt;

/// Longest pattern accepted, in characters.
pub const MAX_PATTERN_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// One character, literally.
    Char(char),
    /// `?`: one character other than `/`.
    One,
    /// `*`: any run of characters without `/`.
    Star,
    /// `**`: any run of characters, `/` included.
    Any,
    /// `**/` at the top or after a `/`: zero or more whole directories (nothing, or a run ending in
    /// `/`).
    Dirs,
    /// `[...]`: one character (not `/`) in (or, negated, not in) the set of ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    tokens: Vec<Token>,
    /// No `/` in the pattern: it is matched against the last path component only.
    name_only: bool,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobError {
    /// The pattern, as given.
    pub pattern: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = crate::text::line(&self.pattern);
        write!(f, "bad pattern '{p}': {}", self.why)
    }
}

impl std::error::Error for GlobError {}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.source)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::text::line(&self.source))
    }
}

impl Glob {
    /// Compiles `pattern`. A leading `/` anchors it at the top (and is dropped); `\` escapes the next
    /// character.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let err = |why| GlobError {
            pattern: pattern.to_string(),
            why,
        };
        if pattern.is_empty() {
            return Err(err("it is empty"));
        }
        if pattern.chars().count() > MAX_PATTERN_LEN {
            return Err(err("it is longer than 1024 characters"));
        }
        let anchored = pattern.strip_prefix('/');
        let body = anchored.unwrap_or(pattern);
        let tokens = tokenize(body).map_err(err)?;
        let name_only = anchored.is_none() && !tokens.contains(&Token::Char('/'));
        Ok(Glob {
            source: pattern.to_string(),
            tokens,
            name_only,
        })
    }

    /// Whether `path` (components joined with `/`) matches.
    pub fn matches(&self, path: &str) -> bool {
        let text: Vec<char> = if self.name_only {
            path.rsplit('/').next().unwrap_or(path).chars().collect()
        } else {
            path.chars().collect()
        };
        matches(&self.tokens, &text)
    }
}

fn tokenize(body: &str) -> Result<Vec<Token>, &'static str> {
    let mut tokens = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => tokens.push(Token::Char(chars.next().ok_or("it ends with a lone '\\'")?)),
            '?' => tokens.push(Token::One),
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                while chars.peek() == Some(&'*') {
                    chars.next();
                }
                // `**/` matches zero or more whole directories: the `/` is part of the `**`.
                let slash_after = chars.peek() == Some(&'/');
                let slash_before = matches!(tokens.last(), None | Some(Token::Char('/')));
                if slash_after && slash_before {
                    chars.next();
                    tokens.push(Token::Dirs);
                } else {
                    tokens.push(Token::Any);
                }
            }
            '*' => tokens.push(Token::Star),
            '[' => tokens.push(class(&mut chars)?),
            c => tokens.push(Token::Char(c)),
        }
    }
    Ok(tokens)
}

/// A `[...]` set, after its `[`: `!` or `^` first negates it, `]` first is literal, `a-z` is a range.
fn class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Token, &'static str> {
    let negated = matches!(chars.peek(), Some('!' | '^'));
    if negated {
        chars.next();
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = chars.next().ok_or("a '[' is not closed")?;
        if c == ']' && !first {
            break;
        }
        first = false;
        let lo = if c == '\\' {
            chars.next().ok_or("a '[' is not closed")?
        } else {
            c
        };
        let mut hi = lo;
        if chars.peek() == Some(&'-') {
            let mut ahead = chars.clone();
            ahead.next();
            if let Some(&h) = ahead.peek().filter(|&&h| h != ']') {
                chars.next();
                chars.next();
                hi = h;
            }
        }
        if hi < lo {
            return Err("a range in '[...]' runs backwards");
        }
        ranges.push((lo, hi));
    }
    Ok(Token::Class { negated, ranges })
}

/// The set of text positions reachable after each token, kept as one boolean row: O(tokens × text).
fn matches(tokens: &[Token], text: &[char]) -> bool {
    let n = text.len();
    let mut row = vec![false; n + 1];
    row[0] = true;
    for token in tokens {
        let mut next = vec![false; n + 1];
        match token {
            Token::Star | Token::Any => {
                let crosses = *token == Token::Any;
                let mut reach = false;
                for j in 0..=n {
                    reach = row[j] || (reach && j > 0 && (crosses || text[j - 1] != '/'));
                    next[j] = reach;
                }
            }
            Token::Dirs => {
                let mut before = false;
                for j in 0..=n {
                    next[j] = row[j] || (before && text[j - 1] == '/');
                    before |= row[j];
                }
            }
            single => {
                for j in 0..n {
                    if row[j] && one(single, text[j]) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        row = next;
    }
    row[n]
}

fn one(token: &Token, c: char) -> bool {
    match token {
        Token::Char(x) => *x == c,
        Token::One => c != '/',
        Token::Class { negated, ranges } => {
            c != '/' && ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
        Token::Star | Token::Any | Token::Dirs => false,
    }
}
