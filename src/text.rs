//! Outside text made safe to print. Tracker messages, URLs, names, comments, peer client strings and
//! error messages that quote them may hold escape sequences or bidi overrides; [`sanitize`] is the
//! one function every printed path goes through (directly, or by [`SafeWriter`] for logs).

use std::io::Write;

/// Longest one-line outside text (a tracker message, a URL) printed, in characters.
pub const MAX_LINE: usize = 300;
/// Longest free text (a torrent comment) printed, in characters.
pub const MAX_BLOCK: usize = 4000;

/// Characters that must never reach a terminal raw: C0 and C1 controls (ESC starts escape sequences;
/// U+009B is CSI on some terminals) and the bidirectional overrides that make text read as other
/// text ("gpj.\u{202e}exe").
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// How [`sanitize`] treats line breaks and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Characters kept; more are cut and `…` appended (`usize::MAX`: no cap).
    pub max_chars: usize,
    /// `None`: a line break is unprintable too (one-line text). `Some(n)`: kept, and the next line
    /// indented by `n` spaces; a carriage return is dropped.
    pub newlines: Option<usize>,
}

impl Shape {
    /// One line of outside text: line breaks replaced, at most [`MAX_LINE`] characters.
    pub const LINE: Shape = Shape {
        max_chars: MAX_LINE,
        newlines: None,
    };
    /// An error message: one line, at most [`MAX_BLOCK`] characters.
    pub const MESSAGE: Shape = Shape {
        max_chars: MAX_BLOCK,
        newlines: None,
    };
    /// A log record: any length, line breaks kept.
    pub const LOG: Shape = Shape {
        max_chars: usize::MAX,
        newlines: Some(0),
    };
}

/// `text` with every unprintable character replaced by `?`, shaped as `shape` says.
pub fn sanitize(text: &str, shape: Shape) -> String {
    let mut out = String::with_capacity(text.len().min(shape.max_chars.saturating_mul(4)));
    let text = if shape.newlines.is_some() {
        text.trim_end_matches(['\r', '\n'])
    } else {
        text
    };
    for (i, c) in text.chars().enumerate() {
        if i == shape.max_chars {
            out.push('…');
            break;
        }
        match (c, shape.newlines) {
            ('\n', Some(indent)) => {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', indent));
            }
            ('\r', Some(_)) => {}
            ('\t', Some(_)) => out.push('\t'),
            (c, _) if is_unprintable(c) => out.push('?'),
            (c, _) => out.push(c),
        }
    }
    out
}

/// One line of outside text ([`Shape::LINE`]).
pub fn line(text: &str) -> String {
    sanitize(text, Shape::LINE)
}

/// Free text over several lines, continuation lines indented by `indent`, capped at [`MAX_BLOCK`].
pub fn block(text: &str, indent: usize) -> String {
    sanitize(
        text.trim_end(),
        Shape {
            max_chars: MAX_BLOCK,
            newlines: Some(indent),
        },
    )
}

/// JSON text with every unprintable character (see [`is_unprintable`]) written as a `\uXXXX`
/// escape: the same JSON value, but a C1 control or a bidi override, which serde_json leaves raw, no
/// longer reaches the terminal. Outside JSON strings there are only ASCII structural characters.
pub fn json_escaped(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if is_unprintable(c) && c != '\n' {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A writer that passes everything through [`sanitize`] ([`Shape::LOG`]): what the log subscriber
/// writes to stderr. Each `write` is one whole formatted record, so a character is never split
/// between calls; invalid UTF-8 is printed as U+FFFD.
pub struct SafeWriter<W: Write>(pub W);

impl<W: Write> Write for SafeWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let mut clean = sanitize(&text, Shape::LOG);
        if text.ends_with('\n') {
            clean.push('\n');
        }
        self.0.write_all(clean.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_text_loses_controls_line_breaks_and_length() {
        assert_eq!(line("ok\x1b[31mred\n"), "ok?[31mred?");
        assert_eq!(line("a\u{9b}2Jb\u{7f}"), "a?2Jb?");
        assert_eq!(line("gpj.\u{202e}exe\u{2066}"), "gpj.?exe?");
        let long = "x".repeat(MAX_LINE + 5);
        assert_eq!(line(&long).chars().count(), MAX_LINE + 1);
        assert!(line(&long).ends_with('…'));
        assert_eq!(line("naïve 東京"), "naïve 東京", "printable Unicode stays");
    }

    #[test]
    fn blocks_keep_and_indent_line_breaks() {
        assert_eq!(block("a\r\nb\x1b[2J\n", 2), "a\n  b?[2J");
        assert_eq!(block("gpj.\u{202e}exe", 0), "gpj.?exe");
        assert_eq!(
            block(&"x".repeat(MAX_BLOCK + 9), 0).chars().count(),
            MAX_BLOCK + 1
        );
    }

    #[test]
    fn json_keeps_its_value_and_loses_raw_controls() {
        let v = serde_json::json!({ "t": "a\u{9b}b\u{202e}c\x1bd" });
        let text = serde_json::to_string_pretty(&v).unwrap();
        let safe = json_escaped(&text);
        assert!(
            !safe.chars().any(|c| is_unprintable(c) && c != '\n'),
            "{safe}"
        );
        assert!(safe.contains("\\u009b"), "{safe}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), v);
    }

    #[test]
    fn the_log_writer_lets_no_escape_through() {
        let mut w = SafeWriter(Vec::new());
        w.write_all(b"WARN url=http://x/\x1b[31mEVIL\x1b[0m \xc2\x9b6n\n")
            .unwrap();
        w.write_all(b"two\nlines\ttab\r\n").unwrap();
        w.write_all(b"bad utf8 \xff\x1b]0;title\x07\n").unwrap();
        let out = String::from_utf8(w.0).unwrap();
        assert_eq!(
            out,
            "WARN url=http://x/?[31mEVIL?[0m ?6n\ntwo\nlines\ttab\nbad utf8 \u{fffd}?]0;title?\n"
        );
        assert!(!out
            .chars()
            .any(|c| is_unprintable(c) && c != '\n' && c != '\t'));
    }
}
