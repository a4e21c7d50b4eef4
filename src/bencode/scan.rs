//! The linear, validating pre-scan of bencode: [`Limits`] (size, depth, value count, tree memory) and
//! the exact offset of any fault, before `bip_bencode` builds a tree from input it will accept.

use super::BencodeError;

/// Bounds applied to every bencoded document read from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input accepted, in bytes.
    pub max_len: usize,
    /// Deepest nesting of lists and dictionaries accepted.
    pub max_depth: usize,
    /// Most values (integers, strings, lists, dictionaries, dictionary keys) in one document.
    pub max_items: usize,
    /// Most memory the decoded tree may need, as estimated by the scan (an upper bound of
    /// `bip_bencode`'s allocations: [`VALUE_COST`], [`DICT_COST`], [`LIST_COST`]).
    pub max_tree_bytes: usize,
}

/// Tree memory charged per value: a 48-byte node in its parent's `Vec` or map, doubled for growth
/// (measured: 94 bytes).
pub const VALUE_COST: usize = 128;
/// Extra charged per dictionary: a `BTreeMap` leaf of 11 entries (measured: 688 bytes).
pub const DICT_COST: usize = 768;
/// Extra charged per list: its first `Vec` allocation (measured: 160 bytes).
pub const LIST_COST: usize = 192;

impl Limits {
    /// Limits for `.torrent` files: 10 MiB, like libtorrent's default `max_buffer_size`; depth 50, far past
    /// any real torrent (a v2 `file tree` is as deep as the deepest path); 2 million items, libtorrent's
    /// token default; a 128 MiB tree, room for about 60,000 files described the Internet Archive's way
    /// (six keys each) while a hostile 10 MiB file cannot cost more.
    pub const TORRENT: Limits = Limits {
        max_len: 10 * 1024 * 1024,
        max_depth: 50,
        max_items: 2_000_000,
        max_tree_bytes: 128 * 1024 * 1024,
    };
    /// Limits for tracker replies: 2 MiB is thousands of peers in any form; replies are shallow; a 4 MiB
    /// tree holds about 3,000 peers in dictionary form (we keep 1,000).
    pub const TRACKER_REPLY: Limits = Limits {
        max_len: 2 * 1024 * 1024,
        max_depth: 16,
        max_items: 200_000,
        max_tree_bytes: 4 * 1024 * 1024,
    };
    /// Limits for DHT (KRPC, BEP 5) datagrams: one UDP datagram, in practice under 1500 bytes (a
    /// `get_peers` reply with 100 peers and 8 nodes is about 1.1 KB); 8 KiB leaves room for BEP 32's
    /// two node lists; messages are at most four levels deep.
    pub const KRPC: Limits = Limits {
        max_len: 8 * 1024,
        max_depth: 6,
        max_items: 1024,
        max_tree_bytes: 256 * 1024,
    };
    /// Limits for BEP 10 extended messages from peers: a frame is at most ~16 KiB anyway; the
    /// handshake is a small flat dictionary.
    pub const PEER_MESSAGE: Limits = Limits {
        max_len: 64 * 1024,
        max_depth: 8,
        max_items: 4096,
        max_tree_bytes: 1024 * 1024,
    };
}

/// What the scanner is inside of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    List,
    DictKey,
    DictValue,
}

/// Validates `bytes` as exactly one bencoded value within `limits`. Stricter than `bip_bencode`: no `+`
/// sign, no empty integer, no leading zeros; duplicate keys are found here too, so that `bip_bencode`
/// never fails (its errors capture a symbolized backtrace, tens of MB, when `RUST_BACKTRACE` is set).
/// Memory: the depth stack, plus the keys of the dictionaries currently open.
pub fn scan(bytes: &[u8], limits: Limits) -> Result<(), BencodeError> {
    if bytes.is_empty() {
        return Err(BencodeError::Empty);
    }
    if bytes.len() > limits.max_len {
        return Err(BencodeError::TooLarge {
            len: bytes.len(),
            max: limits.max_len,
        });
    }
    let mut scanner = Scanner {
        bytes,
        limits,
        stack: Vec::new(),
        keys: DictKeys::default(),
        pos: 0,
        items: 0,
        tree_bytes: 0,
    };
    loop {
        let Some(&byte) = bytes.get(scanner.pos) else {
            return Err(syntax(
                scanner.pos,
                "input ends inside a list or dictionary",
            ));
        };
        if byte == b'e' && !scanner.stack.is_empty() {
            scanner.close()?;
        } else {
            scanner.value(byte)?;
        }
        if scanner.stack.is_empty() {
            break;
        }
    }
    let pos = scanner.pos;
    if pos != bytes.len() {
        return Err(BencodeError::Trailing {
            offset: pos,
            extra: bytes.len() - pos,
        });
    }
    Ok(())
}

fn syntax(offset: usize, what: &'static str) -> BencodeError {
    BencodeError::Syntax { offset, what }
}

/// One scan's position and what it has counted so far.
struct Scanner<'a> {
    bytes: &'a [u8],
    limits: Limits,
    stack: Vec<Frame>,
    keys: DictKeys<'a>,
    pos: usize,
    items: usize,
    tree_bytes: usize,
}

impl<'a> Scanner<'a> {
    /// The `e` at `pos` closes the innermost list or dictionary.
    fn close(&mut self) -> Result<(), BencodeError> {
        match self.stack.pop() {
            Some(Frame::DictValue) => Err(syntax(self.pos, "dictionary key without a value")),
            Some(Frame::DictKey) if self.keys.close() => {
                Err(syntax(self.pos, "duplicate dictionary key"))
            }
            _ => {
                self.pos += 1;
                Ok(())
            }
        }
    }

    /// Reads the value starting with `byte` at `pos` (a list or dictionary only opens), counting it
    /// against the limits.
    fn value(&mut self, byte: u8) -> Result<(), BencodeError> {
        let top = self.stack.last().copied();
        self.charge(byte, top)?;
        if top == Some(Frame::DictKey) && !byte.is_ascii_digit() {
            return Err(syntax(self.pos, "dictionary key is not a byte string"));
        }
        let (bytes, pos) = (self.bytes, self.pos);
        match byte {
            b'i' => self.pos = scan_int(bytes, pos + 1, b'e', true)?,
            b'0'..=b'9' => {
                let start = scan_int(bytes, pos, b':', false)?;
                let len = parse_digits(&bytes[pos..start - 1])
                    .ok_or(syntax(pos, "byte string length too large"))?;
                if len > bytes.len() - start {
                    return Err(syntax(pos, "byte string runs past the end of the input"));
                }
                if top == Some(Frame::DictKey) {
                    self.keys.push(&bytes[start..start + len]);
                }
                self.pos = start + len;
            }
            b'l' | b'd' => {
                if self.stack.len() >= self.limits.max_depth {
                    return Err(BencodeError::TooDeep {
                        offset: pos,
                        max: self.limits.max_depth,
                    });
                }
                self.pos += 1;
            }
            _ => return Err(syntax(pos, "expected 'i', 'l', 'd' or a digit")),
        }
        self.filled();
        match byte {
            b'l' => self.stack.push(Frame::List),
            b'd' => {
                self.stack.push(Frame::DictKey);
                self.keys.open();
            }
            _ => {}
        }
        Ok(())
    }

    /// Counts one more value (`byte` starts it, inside `top`) against the item and tree limits.
    fn charge(&mut self, byte: u8, top: Option<Frame>) -> Result<(), BencodeError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(BencodeError::TooManyItems {
                max: self.limits.max_items,
            });
        }
        // Keys live inside their dictionary's node; every other value takes a node of its own.
        self.tree_bytes += match byte {
            _ if top == Some(Frame::DictKey) => 0,
            b'd' => VALUE_COST + DICT_COST,
            b'l' => VALUE_COST + LIST_COST,
            _ => VALUE_COST,
        };
        if self.tree_bytes > self.limits.max_tree_bytes {
            return Err(BencodeError::TooComplex {
                max: self.limits.max_tree_bytes,
            });
        }
        Ok(())
    }

    /// The value just read fills the slot the top frame was waiting for.
    fn filled(&mut self) {
        if let Some(frame) = self.stack.last_mut() {
            *frame = match *frame {
                Frame::DictKey => Frame::DictValue,
                Frame::DictValue => Frame::DictKey,
                Frame::List => Frame::List,
            };
        }
    }
}

/// The keys of the dictionaries open during a scan, to find duplicates. Sorted dictionaries (the norm:
/// BEP 3 requires it) are checked by comparing each key with the previous one; only a dictionary with
/// keys out of order is sorted when it closes.
#[derive(Default)]
struct DictKeys<'a> {
    /// Keys of every open dictionary, innermost last.
    keys: Vec<&'a [u8]>,
    /// Per open dictionary: where its keys start in `keys`, and whether they arrived out of order.
    frames: Vec<(usize, bool)>,
}

impl<'a> DictKeys<'a> {
    fn open(&mut self) {
        self.frames.push((self.keys.len(), false));
    }

    fn push(&mut self, key: &'a [u8]) {
        if let Some((start, unsorted)) = self.frames.last_mut() {
            if self.keys.len() > *start && self.keys.last().is_some_and(|prev| key <= *prev) {
                *unsorted = true;
            }
            self.keys.push(key);
        }
    }

    /// Closes the innermost dictionary; `true` if it had a duplicate key.
    fn close(&mut self) -> bool {
        let Some((start, unsorted)) = self.frames.pop() else {
            return false;
        };
        let mine = &mut self.keys[start..];
        let duplicate = unsorted && {
            mine.sort_unstable();
            mine.windows(2).any(|w| w[0] == w[1])
        };
        self.keys.truncate(start);
        duplicate
    }
}

/// Reads `[-]digits` up to `delim` starting at `pos`; returns the offset after `delim`.
fn scan_int(bytes: &[u8], pos: usize, delim: u8, signed: bool) -> Result<usize, BencodeError> {
    let mut digits_at = pos;
    if signed && bytes.get(pos) == Some(&b'-') {
        digits_at += 1;
    }
    let mut end = digits_at;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
        // 20 digits already exceed i64; stop early rather than walk a long run of digits.
        if end - digits_at > 20 {
            return Err(syntax(pos, "number too large"));
        }
    }
    if end == digits_at {
        return Err(syntax(pos, "expected digits"));
    }
    if bytes.get(end) != Some(&delim) {
        return Err(syntax(end, "number not terminated"));
    }
    let digits = &bytes[digits_at..end];
    if digits.len() > 1 && digits[0] == b'0' {
        return Err(syntax(pos, "number with leading zeros"));
    }
    if digits_at != pos && digits == b"0" {
        return Err(syntax(pos, "negative zero"));
    }
    if signed {
        // i64 range, negative side included.
        let text =
            std::str::from_utf8(&bytes[pos..end]).map_err(|_| syntax(pos, "expected digits"))?;
        text.parse::<i64>()
            .map_err(|_| syntax(pos, "integer out of range"))?;
    }
    Ok(end + 1)
}

fn parse_digits(digits: &[u8]) -> Option<usize> {
    digits.iter().try_fold(0usize, |acc, d| {
        acc.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}
