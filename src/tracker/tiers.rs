//! BEP 12 tiers: each tier shuffled once, tiers tried in order, a tracker that answers moves to the
//! front of its tier. Pure: the caller supplies the randomness and reports outcomes.

use rand::seq::SliceRandom;
use rand::Rng;

/// The tracker tiers of one torrent, in the order they should be tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    tiers: Vec<Vec<String>>,
}

impl Tiers {
    /// Shuffles each tier once, as BEP 12 asks; empty tiers are dropped.
    pub fn new<R: Rng>(tiers: Vec<Vec<String>>, rng: &mut R) -> Tiers {
        let mut tiers: Vec<Vec<String>> = tiers.into_iter().filter(|t| !t.is_empty()).collect();
        for tier in &mut tiers {
            tier.shuffle(rng);
        }
        Tiers { tiers }
    }

    /// Every tracker in try order, with its tier number.
    pub fn in_order(&self) -> impl Iterator<Item = (usize, &str)> {
        self.tiers
            .iter()
            .enumerate()
            .flat_map(|(i, t)| t.iter().map(move |u| (i, u.as_str())))
    }

    /// The tiers as they stand.
    pub fn tiers(&self) -> &[Vec<String>] {
        &self.tiers
    }

    /// `url` answered: it moves to the front of its tier.
    pub fn promote(&mut self, url: &str) {
        for tier in &mut self.tiers {
            if let Some(pos) = tier.iter().position(|u| u == url) {
                let t = tier.remove(pos);
                tier.insert(0, t);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn urls(n: usize, tag: &str) -> Vec<String> {
        (0..n).map(|i| format!("{tag}{i}")).collect()
    }

    #[test]
    fn shuffles_within_tiers_only() {
        let input = vec![urls(8, "a"), vec![], urls(8, "b")];
        let mut rng = StdRng::seed_from_u64(1);
        let t = Tiers::new(input.clone(), &mut rng);
        assert_eq!(t.tiers().len(), 2, "empty tier dropped");
        let order: Vec<_> = t.in_order().collect();
        assert!(order[..8]
            .iter()
            .all(|(tier, u)| *tier == 0 && u.starts_with('a')));
        assert!(order[8..]
            .iter()
            .all(|(tier, u)| *tier == 1 && u.starts_with('b')));
        let mut first = t.tiers()[0].clone();
        assert_ne!(first, input[0], "8! orders: the seed gives a different one");
        first.sort();
        assert_eq!(first, input[0]);
    }

    #[test]
    fn promote_moves_to_front_of_its_tier() {
        let mut t = Tiers {
            tiers: vec![urls(3, "a"), urls(3, "b")],
        };
        t.promote("b2");
        assert_eq!(t.tiers()[1], ["b2", "b0", "b1"]);
        assert_eq!(t.tiers()[0], ["a0", "a1", "a2"]);
        t.promote("zzz");
        assert_eq!(t.tiers()[1], ["b2", "b0", "b1"]);
    }
}
