//! The Redis key layout (pure): which keys one swarm and one bucket of counters use, and the
//! Redis Cluster slot arithmetic that puts a swarm and its bucket in one slot.
//!
//! A swarm with hex info-hash `H` under prefix `P` is `P:{H}:peers`, `P:{H}:seen`, `P:{H}:seeders`
//! and `P:{H}:dl`: the hash tag `{H}` puts them in one cluster slot. The counters (`P:{T}:totals`:
//! torrents, seeders, leechers, completed) and the sweep's index (`P:{T}:torrents`) live in
//! buckets. On a single Redis there is one bucket, tag `all`; on a cluster there is one bucket per
//! slot, whose tag `T` is a short string that hashes to that slot, so every script touches one slot.

/// Slots of a Redis Cluster.
pub const SLOTS: usize = 16384;

/// CRC16/XMODEM, the checksum Redis Cluster hashes keys with.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of a hash tag (the text between the braces of a key).
pub fn slot(tag: &str) -> usize {
    usize::from(crc16(tag.as_bytes())) % SLOTS
}

/// Where keys go: one bucket (single Redis) or one per slot (cluster).
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: String,
    /// Bucket tags, by bucket: `["all"]`, or one tag per slot.
    tags: Vec<String>,
}

impl Layout {
    /// The single-Redis layout: one bucket.
    pub fn single(prefix: &str) -> Layout {
        Layout {
            prefix: prefix.to_string(),
            tags: vec!["all".to_string()],
        }
    }

    /// The cluster layout: bucket `s` is slot `s`, its tag the first `b<n>` that hashes there.
    pub fn cluster(prefix: &str) -> Layout {
        let mut tags = vec![String::new(); SLOTS];
        let mut left = SLOTS;
        let mut n = 0u32;
        // About SLOTS * ln(SLOTS) (some 160,000) tries cover every slot.
        while left > 0 {
            let tag = format!("b{n}");
            let s = slot(&tag);
            if tags[s].is_empty() {
                tags[s] = tag;
                left -= 1;
            }
            n += 1;
        }
        Layout {
            prefix: prefix.to_string(),
            tags,
        }
    }

    /// How many buckets.
    pub fn buckets(&self) -> usize {
        self.tags.len()
    }

    /// The bucket of the swarm with hex info-hash `hex`.
    pub fn bucket(&self, hex: &str) -> usize {
        if self.tags.len() == 1 {
            0
        } else {
            slot(hex)
        }
    }

    /// A key of the swarm `hex`: `kind` is `peers`, `seen`, `seeders` or `dl`.
    pub fn swarm(&self, kind: &str, hex: &str) -> String {
        format!("{}:{{{hex}}}:{kind}", self.prefix)
    }

    /// The prefix a script builds a swarm's keys from: `P:{` (then `H}:kind`).
    pub fn swarm_prefix(&self) -> String {
        format!("{}:{{", self.prefix)
    }

    /// The sorted set of bucket `b`'s swarms by last announce.
    pub fn torrents(&self, b: usize) -> String {
        format!("{}:{{{}}}:torrents", self.prefix, self.tags[b])
    }

    /// The counters of bucket `b`.
    pub fn totals(&self, b: usize) -> String {
        format!("{}:{{{}}}:totals", self.prefix, self.tags[b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_and_slots_match_redis() {
        // The check value of CRC16/XMODEM, and `CLUSTER KEYSLOT` answers of Redis 7.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("bar"), 5061);
        assert_eq!(slot(""), 0);
    }

    #[test]
    fn every_slot_has_a_bucket_tag_in_that_slot() {
        let l = Layout::cluster("p");
        assert_eq!(l.buckets(), SLOTS);
        for (s, tag) in l.tags.iter().enumerate() {
            assert_eq!(slot(tag), s, "{tag}");
        }
    }

    #[test]
    fn a_swarm_and_its_bucket_share_a_slot() {
        let l = Layout::cluster("p");
        let hex = "0123456789abcdef0123456789abcdef01234567";
        let b = l.bucket(hex);
        assert_eq!(b, slot(hex));
        assert_eq!(l.swarm("peers", hex), format!("p:{{{hex}}}:peers"));
        assert_eq!(l.torrents(b), format!("p:{{{}}}:torrents", l.tags[b]));
        assert_eq!(l.totals(b), format!("p:{{{}}}:totals", l.tags[b]));
        assert_eq!(
            format!("{}{hex}}}:dl", l.swarm_prefix()),
            l.swarm("dl", hex)
        );
    }

    #[test]
    fn a_single_redis_has_one_bucket() {
        let l = Layout::single("p");
        assert_eq!(l.buckets(), 1);
        assert_eq!(l.bucket("ff"), 0);
        assert_eq!(l.bucket("00"), 0);
        assert_eq!(l.totals(0), "p:{all}:totals");
        assert_eq!(l.torrents(0), "p:{all}:torrents");
    }
}
