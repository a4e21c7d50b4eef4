//! Availability of every piece, and the pickable pieces (missing, wanted, not started) grouped by
//! it, as libtorrent's piece_picker keeps its pieces sorted by availability. Each piece knows its
//! place in its group, so a `have`, a peer joining or leaving, or a piece starting or coming back
//! moves one piece in O(1); rarest-first looks at the lowest groups first, not at every piece.
//! Counts come from peers: they saturate, and an index out of range is ignored.

use rand::Rng;

use crate::bitfield::Bitfield;

/// `slot` of a piece that is not pickable.
const OUT: u32 = u32::MAX;
/// Highest group: pieces at least this common share it (bounds memory whatever peers claim).
const TOP_GROUP: u32 = 1 << 16;
/// Most random probes into a group before scanning it: a peer with many of the group's pieces is
/// served in a few probes, one with few of them by a scan. Both are uniform over its pieces.
const MAX_PROBES: usize = 64;

#[derive(Debug)]
pub(super) struct Avail {
    /// Per piece: how many peers have it.
    count: Vec<u32>,
    /// Per pickable piece: its index in its group; `OUT` for the others.
    slot: Vec<u32>,
    /// `groups[a]`: the pickable pieces `a` peers have (`TOP_GROUP` and more in the last), unordered.
    groups: Vec<Vec<u32>>,
    /// Number of pickable pieces.
    len: u32,
    /// No pickable piece has a lower index (a hint for sequential order).
    first: u32,
}

impl Avail {
    /// `n` pieces, none pickable, none announced.
    pub(super) fn new(n: u32) -> Avail {
        Avail {
            count: vec![0; n as usize],
            slot: vec![OUT; n as usize],
            groups: Vec::new(),
            len: 0,
            first: n,
        }
    }

    /// How many peers have piece `i`.
    pub(super) fn get(&self, i: u32) -> u32 {
        self.count.get(i as usize).copied().unwrap_or(0)
    }

    /// Whether no piece is pickable.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether piece `i` is pickable.
    pub(super) fn contains(&self, i: u32) -> bool {
        self.slot.get(i as usize).is_some_and(|&s| s != OUT)
    }

    /// Makes piece `i` pickable.
    pub(super) fn insert(&mut self, i: u32) {
        let Some(&c) = self.count.get(i as usize) else {
            return;
        };
        if self.contains(i) {
            return;
        }
        let g = c.min(TOP_GROUP) as usize;
        if self.groups.len() <= g {
            self.groups.resize_with(g + 1, Vec::new);
        }
        let group = &mut self.groups[g];
        self.slot[i as usize] = group.len() as u32;
        group.push(i);
        self.len += 1;
        self.first = self.first.min(i);
    }

    /// Makes piece `i` not pickable.
    pub(super) fn remove(&mut self, i: u32) {
        if !self.contains(i) {
            return;
        }
        let s = self.slot[i as usize] as usize;
        let g = self.count[i as usize].min(TOP_GROUP) as usize;
        let group = &mut self.groups[g];
        group.swap_remove(s);
        if let Some(&moved) = group.get(s) {
            self.slot[moved as usize] = s as u32;
        }
        self.slot[i as usize] = OUT;
        self.len -= 1;
    }

    /// One more peer has piece `i`.
    pub(super) fn increment(&mut self, i: u32) {
        self.update(i, |c| c.saturating_add(1));
    }

    /// One peer fewer has piece `i`.
    pub(super) fn decrement(&mut self, i: u32) {
        self.update(i, |c| c.saturating_sub(1));
    }

    fn update(&mut self, i: u32, f: impl FnOnce(u32) -> u32) {
        let Some(&c) = self.count.get(i as usize) else {
            return;
        };
        let pickable = self.contains(i);
        if pickable {
            self.remove(i);
        }
        self.count[i as usize] = f(c);
        if pickable {
            self.insert(i);
        }
    }

    /// Rarest first: a pickable piece of `has` of the lowest availability, uniformly at random
    /// among those. Looks at groups from the rarest up and stops at the first with a piece of `has`,
    /// probing a large group at random before scanning it. Once that has cost more than a walk over
    /// the peer's own pieces would, walks those instead (a peer with few pieces, all common).
    pub(super) fn rarest<R: Rng>(&self, has: &Bitfield, rng: &mut R) -> Option<u32> {
        let n = self.count.len();
        let held = has.count() as usize;
        // Tries that find a piece of a peer holding `held` of `n` pieces about 98% of the time.
        let tries = (4 * n).div_ceil(held.max(1));
        let walk = 2 * held + n / 64;
        let mut seen = 0u32;
        let mut scanned = 0usize;
        for group in &self.groups {
            if seen >= self.len {
                break;
            }
            seen += group.len() as u32;
            if tries <= MAX_PROBES && tries < group.len() {
                if let Some(i) = probe(group, has, tries, rng) {
                    return Some(i);
                }
            }
            scanned += group.len();
            if scanned > walk {
                return self.rarest_of(has, rng);
            }
            if let Some(i) = scan(group, has, rng) {
                return Some(i);
            }
        }
        None
    }

    /// [`Avail::rarest`] by a walk over the peer's pieces: the least available, ties at random.
    fn rarest_of<R: Rng>(&self, has: &Bitfield, rng: &mut R) -> Option<u32> {
        let mut best: Option<(u32, u32)> = None;
        let mut ties = 0usize;
        for i in ones(has).filter(|&i| self.contains(i)) {
            let g = self.get(i).min(TOP_GROUP);
            match best {
                Some((_, b)) if g > b => {}
                Some((_, b)) if g == b => {
                    ties += 1;
                    if rng.random_range(0..=ties) == 0 {
                        best = Some((i, g));
                    }
                }
                _ => {
                    best = Some((i, g));
                    ties = 0;
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// The lowest pickable piece of `has`.
    pub(super) fn lowest(&mut self, has: &Bitfield) -> Option<u32> {
        let n = self.count.len() as u32;
        while self.first < n && !self.contains(self.first) {
            self.first += 1;
        }
        (self.first..n).find(|&i| self.contains(i) && has.get(i))
    }

    /// A pickable piece of `has`, uniformly at random: probes first (rejection sampling), then a
    /// scan.
    pub(super) fn random<R: Rng>(&self, has: &Bitfield, rng: &mut R) -> Option<u32> {
        let n = self.count.len() as u32;
        if n == 0 || self.len == 0 {
            return None;
        }
        for _ in 0..MAX_PROBES / 4 {
            let i = rng.random_range(0..n);
            if self.contains(i) && has.get(i) {
                return Some(i);
            }
        }
        reservoir(ones(has).filter(|&i| self.contains(i)), rng)
    }

    /// Checks the structure against the counts (tests).
    #[cfg(test)]
    pub(super) fn check(&self) {
        let mut total = 0;
        for (g, group) in self.groups.iter().enumerate() {
            for (s, &i) in group.iter().enumerate() {
                assert_eq!(self.slot[i as usize] as usize, s, "piece {i}");
                assert_eq!(
                    self.count[i as usize].min(TOP_GROUP) as usize,
                    g,
                    "piece {i}"
                );
                assert!(i >= self.first, "piece {i} below the hint {}", self.first);
            }
            total += group.len();
        }
        assert_eq!(total, self.len as usize);
        let slotted = self.slot.iter().filter(|&&s| s != OUT).count();
        assert_eq!(slotted, total);
    }
}

/// A piece of `group` that `has` holds, by `tries` random tries. Each try is uniform over the group,
/// so a hit is uniform over the peer's pieces in it; after a miss, the caller's scan is uniform too,
/// so the result is uniform either way.
fn probe<R: Rng>(group: &[u32], has: &Bitfield, tries: usize, rng: &mut R) -> Option<u32> {
    (0..tries)
        .map(|_| group[rng.random_range(0..group.len())])
        .find(|&i| has.get(i))
}

/// A piece of `group` that `has` holds, uniformly at random: counts them, then takes one.
fn scan<R: Rng>(group: &[u32], has: &Bitfield, rng: &mut R) -> Option<u32> {
    let bytes = has.as_bytes();
    let held = |i: u32| {
        bytes
            .get(i as usize / 8)
            .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
    };
    let mut n = 0;
    for &i in group {
        n += usize::from(held(i));
    }
    if n == 0 {
        return None;
    }
    let mut r = rng.random_range(0..n);
    for &i in group {
        if held(i) {
            if r == 0 {
                return Some(i);
            }
            r -= 1;
        }
    }
    None
}

/// One item of `items`, uniformly at random, in one pass.
fn reservoir<R: Rng>(items: impl Iterator<Item = u32>, rng: &mut R) -> Option<u32> {
    let mut chosen = None;
    for (seen, i) in items.enumerate() {
        if rng.random_range(0..=seen) == 0 {
            chosen = Some(i);
        }
    }
    chosen
}

/// The set bits of `has` in order, skipping zero words (faster than [`Bitfield::ones`] on sparse
/// fields).
pub(super) fn ones(has: &Bitfield) -> Ones<'_> {
    Ones {
        bytes: has.as_bytes(),
        len: has.len(),
        next: 0,
        bits: 0,
    }
}

/// See [`ones`].
pub(super) struct Ones<'a> {
    bytes: &'a [u8],
    len: u32,
    /// The 8-byte word after the one in `bits`.
    next: usize,
    /// The bits of word `next - 1` not returned yet, the lowest piece in the highest bit.
    bits: u64,
}

impl Iterator for Ones<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        while self.bits == 0 {
            let start = self.next * 8;
            let rest = self.bytes.get(start..)?;
            if rest.is_empty() {
                return None;
            }
            let mut word = [0u8; 8];
            let n = rest.len().min(8);
            word[..n].copy_from_slice(&rest[..n]);
            self.bits = u64::from_be_bytes(word);
            self.next += 1;
        }
        let bit = self.bits.leading_zeros();
        self.bits &= !(1 << (63 - bit));
        let i = (self.next as u32 - 1) * 64 + bit;
        (i < self.len).then_some(i)
    }
}
