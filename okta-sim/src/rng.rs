//! A tiny deterministic PRNG (SplitMix64): the same seed must give the same System Log on every
//! platform and crate version, which `rand`'s generators do not promise.

#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A value in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Okta-style identifier: a 3-character prefix then alphanumerics, `len` characters in all.
    pub(crate) fn okta_id(&mut self, prefix: &str, len: usize) -> String {
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut id = String::with_capacity(len);
        id.push_str(prefix);
        while id.len() < len {
            id.push(ALPHABET[self.below(ALPHABET.len())] as char);
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_sequence() {
        let mut a = SplitMix::new(7);
        let mut b = SplitMix::new(7);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(SplitMix::new(8).next_u64(), xs[0]);
    }

    #[test]
    fn unit_stays_in_half_open_interval() {
        let mut r = SplitMix::new(1);
        assert!((0..10_000)
            .map(|_| r.unit())
            .all(|u| (0.0..1.0).contains(&u)));
    }

    #[test]
    fn okta_id_has_prefix_and_length() {
        let id = SplitMix::new(3).okta_id("00u", 20);
        assert!(id.starts_with("00u"));
        assert_eq!(id.len(), 20);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
