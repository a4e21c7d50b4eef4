//! `announce_peer` tokens (BEP 5): a token is SHA-1 of a secret and the querier's IP, cut to 8
//! bytes. The secret rotates every 5 minutes and the previous one is still accepted, so a token
//! lives 5 to 10 minutes. Pure: the caller passes the clock and the randomness.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

/// How often the secret changes.
pub const ROTATE: Duration = Duration::from_secs(5 * 60);
/// Bytes in a token.
pub const TOKEN_LEN: usize = 8;

/// The current and previous secrets.
#[derive(Debug, Clone)]
pub struct Tokens {
    current: [u8; 16],
    previous: [u8; 16],
    rotated: Instant,
}

impl Tokens {
    /// Fresh secrets.
    pub fn new(rng: &mut impl rand::Rng, now: Instant) -> Tokens {
        let mut current = [0u8; 16];
        let mut previous = [0u8; 16];
        rng.fill_bytes(&mut current);
        rng.fill_bytes(&mut previous);
        Tokens {
            current,
            previous,
            rotated: now,
        }
    }

    /// Rotates the secret if [`ROTATE`] has passed.
    pub fn tick(&mut self, rng: &mut impl rand::Rng, now: Instant) {
        if now.saturating_duration_since(self.rotated) >= ROTATE {
            self.previous = self.current;
            rng.fill_bytes(&mut self.current);
            self.rotated = now;
        }
    }

    fn make(secret: &[u8; 16], ip: &IpAddr) -> [u8; TOKEN_LEN] {
        let mut h = Sha1::new();
        h.update(secret);
        match ip {
            IpAddr::V4(v4) => h.update(v4.octets()),
            IpAddr::V6(v6) => h.update(v6.octets()),
        }
        let d: [u8; 20] = h.finalize().into();
        let mut t = [0u8; TOKEN_LEN];
        t.copy_from_slice(&d[..TOKEN_LEN]);
        t
    }

    /// The token to give `ip` now.
    pub fn token(&self, ip: &IpAddr) -> [u8; TOKEN_LEN] {
        Self::make(&self.current, ip)
    }

    /// Whether `token` is one we gave `ip` within the last two secrets.
    pub fn valid(&self, ip: &IpAddr, token: &[u8]) -> bool {
        token == Self::make(&self.current, ip) || token == Self::make(&self.previous, ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_token_is_valid_for_its_ip_through_one_rotation_only() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let t0 = Instant::now();
        let mut tokens = Tokens::new(&mut rng, t0);
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let other: IpAddr = "10.1.2.4".parse().unwrap();
        let tok = tokens.token(&ip);
        assert!(tokens.valid(&ip, &tok));
        assert!(!tokens.valid(&other, &tok), "bound to the IP");
        assert!(!tokens.valid(&ip, b"garbage"));
        tokens.tick(&mut rng, t0 + ROTATE - Duration::from_secs(1));
        assert!(tokens.valid(&ip, &tok), "no rotation yet");
        tokens.tick(&mut rng, t0 + ROTATE);
        assert!(tokens.valid(&ip, &tok), "previous secret still accepted");
        assert_ne!(tokens.token(&ip), tok, "a new token after rotation");
        tokens.tick(&mut rng, t0 + 2 * ROTATE);
        assert!(
            !tokens.valid(&ip, &tok),
            "expired after two rotations (at most 10 min)"
        );
    }
}
