//! The live HTTP connections, admission under a cap, and which one to evict when a new one arrives
//! at the cap: the oldest of those still waiting for a request head (new, slow, or idle between
//! keep-alive requests). Pure; every operation O(1).
//!
//! Each connection is a slot in a slab; the waiting ones are also on a doubly linked list in the
//! order they started waiting, so the oldest is its head. A connection being answered is off the
//! list and cannot be chosen. Invariants: a slot is on the list iff its phase is
//! [`Phase::Waiting`]; `live` counts the slots that are not free, `evicted` those in
//! [`Phase::Evicted`]; admission keeps `live - evicted <= cap`, so `live` exceeds the cap only by
//! connections already told to close.

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading a request head, or idle between requests: evictable.
    Waiting,
    /// A complete head was read and the request is being answered: not evictable.
    Busy,
    /// Chosen for eviction; closing.
    Evicted,
}

const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Node<T> {
    /// `None` when the slot is free.
    value: Option<T>,
    phase: Phase,
    prev: u32,
    next: u32,
}

/// A connection's handle in the [`Registry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(u32);

/// Live connections, each carrying a `T` (how to tell it to close).
#[derive(Debug)]
pub struct Registry<T> {
    nodes: Vec<Node<T>>,
    free: Vec<u32>,
    /// Oldest waiting connection.
    head: u32,
    /// Newest waiting connection.
    tail: u32,
    live: usize,
    evicted: usize,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            live: 0,
            evicted: 0,
        }
    }
}

impl<T: Clone> Registry<T> {
    /// Connections registered and not yet removed (evicted ones included until they close).
    pub fn live(&self) -> usize {
        self.live
    }

    /// Admits a new connection under `cap`, evicting the oldest waiting one when at the cap:
    /// `Ok((key, victim))`, the victim to be told to close. `Err(value)` when at the cap with every
    /// connection busy (or already closing).
    pub fn admit(&mut self, cap: usize, value: T) -> Result<(Key, Option<T>), T> {
        let victim = if self.live - self.evicted < cap.max(1) {
            None
        } else {
            match self.evict_oldest() {
                Some(v) => Some(v),
                None => return Err(value),
            }
        };
        Ok((self.insert(value), victim))
    }

    /// A new connection, waiting for its first request head (no cap).
    pub fn insert(&mut self, value: T) -> Key {
        let node = Node {
            value: Some(value),
            phase: Phase::Waiting,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.live += 1;
        self.push_back(i);
        Key(i)
    }

    /// The phase of `key`, `None` once removed.
    pub fn phase(&self, key: Key) -> Option<Phase> {
        let n = self.nodes.get(key.0 as usize)?;
        n.value.as_ref().map(|_| n.phase)
    }

    /// A complete request head arrived: not evictable until [`Registry::waiting`].
    pub fn busy(&mut self, key: Key) {
        if self.phase(key) == Some(Phase::Waiting) {
            self.unlink(key.0);
            self.nodes[key.0 as usize].phase = Phase::Busy;
        }
    }

    /// The request was answered: waiting for the next head, evictable, the newest of them.
    pub fn waiting(&mut self, key: Key) {
        if self.phase(key) == Some(Phase::Busy) {
            self.nodes[key.0 as usize].phase = Phase::Waiting;
            self.push_back(key.0);
        }
    }

    /// The connection closed: frees its slot. Removing a free slot does nothing.
    pub fn remove(&mut self, key: Key) {
        match self.phase(key) {
            None => return,
            Some(Phase::Waiting) => self.unlink(key.0),
            Some(Phase::Evicted) => self.evicted -= 1,
            Some(Phase::Busy) => {}
        }
        self.nodes[key.0 as usize].value = None;
        self.free.push(key.0);
        self.live -= 1;
    }

    /// Marks the oldest waiting connection evicted and returns its value, to tell it to close;
    /// `None` when every connection is busy (or already evicted).
    pub fn evict_oldest(&mut self) -> Option<T> {
        let i = self.head;
        if i == NIL {
            return None;
        }
        self.unlink(i);
        self.evicted += 1;
        let n = &mut self.nodes[i as usize];
        n.phase = Phase::Evicted;
        n.value.clone()
    }

    fn push_back(&mut self, i: u32) {
        let old_tail = self.tail;
        {
            let n = &mut self.nodes[i as usize];
            n.prev = old_tail;
            n.next = NIL;
        }
        match old_tail {
            NIL => self.head = i,
            t => self.nodes[t as usize].next = i,
        }
        self.tail = i;
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let n = &mut self.nodes[i as usize];
            let links = (n.prev, n.next);
            n.prev = NIL;
            n.next = NIL;
            links
        };
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain<T: Clone>(r: &mut Registry<T>) -> Vec<T> {
        std::iter::from_fn(|| r.evict_oldest()).take(100).collect()
    }

    #[test]
    fn evicts_the_oldest_waiting_first() {
        let mut r = Registry::default();
        let [a, b, c] = ["a", "b", "c"].map(|v| r.insert(v));
        assert_eq!(r.live(), 3);
        assert_eq!(r.evict_oldest(), Some("a"));
        assert_eq!(r.phase(a), Some(Phase::Evicted));
        // Evicted once only, and counted until it closes.
        assert_eq!(drain(&mut r), vec!["b", "c"]);
        assert_eq!(r.evict_oldest(), None);
        assert_eq!(r.live(), 3);
        for k in [a, b, c] {
            r.remove(k);
        }
        assert_eq!(r.live(), 0);
    }

    #[test]
    fn admission_evicts_at_the_cap_and_refuses_when_all_are_busy() {
        let mut r = Registry::default();
        let (a, none) = r.admit(2, "a").unwrap();
        assert_eq!(none, None);
        let (b, _) = r.admit(2, "b").unwrap();
        // At the cap: the oldest waiting one makes room.
        let (c, victim) = r.admit(2, "c").unwrap();
        assert_eq!(victim, Some("a"));
        assert_eq!(r.live(), 3, "a is counted until it closes");
        r.busy(b);
        r.busy(c);
        assert_eq!(r.admit(2, "d"), Err("d"), "all busy: wait");
        // a closing does not make room beyond the cap (it was already replaced); b leaving does.
        r.remove(a);
        assert_eq!(r.admit(2, "d"), Err("d"));
        r.remove(b);
        let (_, victim) = r.admit(2, "d").unwrap();
        assert_eq!(victim, None);
        assert_eq!(r.live(), 2);
    }

    #[test]
    fn busy_connections_are_never_chosen() {
        let mut r = Registry::default();
        let [a, b, c] = ["a", "b", "c"].map(|v| r.insert(v));
        r.busy(a);
        r.busy(c);
        assert_eq!(drain(&mut r), vec!["b"]);
        assert_eq!(r.evict_oldest(), None, "all busy");
        // Answered: waiting again, now the newest waiting one.
        r.waiting(c);
        r.waiting(a);
        assert_eq!(drain(&mut r), vec!["c", "a"]);
        // An evicted connection stays evicted whatever its task reports afterwards.
        r.busy(a);
        r.waiting(a);
        assert_eq!(r.phase(a), Some(Phase::Evicted));
        assert_eq!(r.evict_oldest(), None);
        let _ = b;
    }

    #[test]
    fn idle_keep_alive_goes_behind_newer_arrivals() {
        let mut r = Registry::default();
        let a = r.insert("a");
        r.busy(a);
        let b = r.insert("b");
        r.waiting(a); // a's reply is out after b arrived
        let _ = r.insert("c");
        assert_eq!(drain(&mut r), vec!["b", "a", "c"]);
        let _ = b;
    }

    #[test]
    fn removal_unlinks_anywhere_and_slots_are_reused() {
        let mut r = Registry::default();
        let keys: Vec<Key> = (0..5).map(|i| r.insert(i)).collect();
        r.remove(keys[0]); // head
        r.remove(keys[2]); // middle
        r.remove(keys[4]); // tail
        r.remove(keys[4]); // twice: nothing
        assert_eq!(r.live(), 2);
        assert_eq!(r.phase(keys[2]), None);
        let again = r.insert(9);
        assert!(
            again == keys[4] || again == keys[2],
            "a freed slot is reused"
        );
        assert_eq!(drain(&mut r), vec![1, 3, 9]);
        assert_eq!(r.nodes.len(), 5, "the slab did not grow");
    }

    #[test]
    fn a_long_churn_keeps_the_list_consistent() {
        // A deterministic walk over every operation, checked against a plain model.
        let mut r = Registry::default();
        let mut model: Vec<(Key, u32, Phase)> = Vec::new(); // waiting order = insertion order here
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..5000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pick = |len: usize| (x >> 33) as usize % len.max(1);
            match x % 5 {
                0 | 1 => model.push((r.insert(step), step, Phase::Waiting)),
                2 if !model.is_empty() => {
                    let (k, _, _) = model.remove(pick(model.len()));
                    r.remove(k);
                }
                3 if !model.is_empty() => {
                    let i = pick(model.len());
                    let (k, v, p) = model[i];
                    match p {
                        Phase::Waiting => {
                            r.busy(k);
                            model[i].2 = Phase::Busy;
                        }
                        Phase::Busy => {
                            r.waiting(k);
                            model.remove(i);
                            model.push((k, v, Phase::Waiting));
                        }
                        Phase::Evicted => {}
                    }
                }
                _ => {
                    let want = model.iter().position(|m| m.2 == Phase::Waiting);
                    let got = r.evict_oldest();
                    assert_eq!(got, want.map(|i| model[i].1), "step {step}");
                    if let Some(i) = want {
                        model[i].2 = Phase::Evicted;
                    }
                }
            }
            assert_eq!(r.live(), model.len());
            let evicted = model.iter().filter(|m| m.2 == Phase::Evicted).count();
            assert_eq!(r.evicted, evicted);
        }
    }
}
