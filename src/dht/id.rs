//! DHT node ids and the XOR metric (BEP 5): distance, bucket index, and ids at a chosen distance.

use std::fmt;

/// A 160-bit node id (or an info-hash used as a lookup target).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 20]);

impl NodeId {
    /// A random id.
    pub fn random(rng: &mut impl rand::Rng) -> NodeId {
        let mut id = [0u8; 20];
        rng.fill_bytes(&mut id);
        NodeId(id)
    }

    /// `self XOR other`, compared as a big-endian number: smaller is closer.
    pub fn distance(&self, other: &NodeId) -> [u8; 20] {
        let mut d = [0u8; 20];
        for (i, x) in d.iter_mut().enumerate() {
            *x = self.0[i] ^ other.0[i];
        }
        d
    }

    /// Bits in common from the most significant: 160 for the same id.
    pub fn common_prefix(&self, other: &NodeId) -> u32 {
        let d = self.distance(other);
        for (i, b) in d.iter().enumerate() {
            if *b != 0 {
                return i as u32 * 8 + b.leading_zeros();
            }
        }
        160
    }

    /// An id sharing exactly the first `prefix` bits with `self` (bit `prefix` flipped, the rest
    /// random): a target inside the bucket at that depth, for refreshing it.
    pub fn with_prefix(&self, prefix: u32, rng: &mut impl rand::Rng) -> NodeId {
        let mut id = NodeId::random(rng);
        let prefix = prefix.min(159) as usize;
        for bit in 0..=prefix {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let mine = self.0[byte] & mask;
            let want = if bit == prefix { mine ^ mask } else { mine };
            id.0[byte] = (id.0[byte] & !mask) | want;
        }
        id
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…")
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn distance_and_prefix() {
        let a = NodeId([0; 20]);
        let mut b = [0u8; 20];
        b[0] = 0x10;
        let b = NodeId(b);
        assert_eq!(a.common_prefix(&b), 3);
        assert_eq!(a.common_prefix(&a), 160);
        assert_eq!(a.distance(&b)[0], 0x10);
        let mut c = [0u8; 20];
        c[19] = 1;
        assert_eq!(a.common_prefix(&NodeId(c)), 159);
        assert!(a.distance(&NodeId(c)) < a.distance(&b), "c is closer");
    }

    #[test]
    fn ids_with_a_prefix_land_in_that_bucket() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let me = NodeId::random(&mut rng);
        for prefix in [0, 1, 7, 8, 9, 63, 100, 159] {
            for _ in 0..20 {
                let id = me.with_prefix(prefix, &mut rng);
                assert_eq!(me.common_prefix(&id), prefix, "prefix {prefix}");
            }
        }
    }
}
