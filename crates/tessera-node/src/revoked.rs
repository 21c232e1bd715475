//! A fixed-size filter of revoked JWT ids.
//!
//! Owns [`RevokedFilter`]: a Bloom filter (Bloom, "Space/time trade-offs in hash coding with
//! allowable errors", CACM 13(7), 1970) over the `jti` of every revoked JWT that a node knows
//! of. Its memory is fixed when it is made, however many revocations it learns: it never says
//! "not revoked" for an id that was inserted, and says "maybe" for an id that was not with a
//! probability that grows as it fills (about 1 % with 3.5 million ids in the default 4 MiB,
//! 2 % past 4 million, every lookup once it is saturated). The cache confirms every "maybe" in
//! the database, so a full filter costs database reads, never a wrong answer.
//!
//! Bits are set with atomic OR: inserts and lookups run concurrently without a lock.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits in the filter unless told otherwise: 2^25 bits, 4 MiB.
pub const DEFAULT_BITS: usize = 1 << 25;

/// Bits set (and tested) per id: the number that minimises false positives near the filter's
/// design load of about 3.5 million ids in the default size (k = (m / n) ln 2).
const HASHES: u64 = 7;

/// A Bloom filter of strings with a fixed number of bits.
pub struct RevokedFilter {
    words: Box<[AtomicU64]>,
    /// `bits - 1`; `bits` is a power of two.
    mask: u64,
    /// Two independent keyed hashes (SipHash with random keys, fresh for every filter), so
    /// that nobody can choose ids that collide in it.
    first: RandomState,
    second: RandomState,
}

impl RevokedFilter {
    /// An empty filter of at least `bits` bits (rounded up to a power of two, at least 64).
    pub fn new(bits: usize) -> Self {
        let bits = bits.max(64).next_power_of_two();
        let words = (0..bits / 64).map(|_| AtomicU64::new(0)).collect();
        Self {
            words,
            mask: bits as u64 - 1,
            first: RandomState::new(),
            second: RandomState::new(),
        }
    }

    /// The bit positions of `id` (Kirsch and Mitzenmacher's double hashing).
    fn positions(&self, id: &str) -> impl Iterator<Item = u64> {
        let h1 = self.first.hash_one(id);
        // Odd, so that the positions differ for every i below the (power-of-two) size.
        let h2 = self.second.hash_one(id) | 1;
        let mask = self.mask;
        (0..HASHES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & mask)
    }

    fn word(&self, bit: u64) -> Option<(&AtomicU64, u64)> {
        let index = usize::try_from(bit / 64).ok()?;
        Some((self.words.get(index)?, 1u64 << (bit % 64)))
    }

    /// Records `id`.
    pub fn insert(&self, id: &str) {
        for bit in self.positions(id) {
            if let Some((word, flag)) = self.word(bit) {
                word.fetch_or(flag, Ordering::Relaxed);
            }
        }
    }

    /// `false` if `id` was never inserted; `true` if it was, or by chance.
    pub fn may_contain(&self, id: &str) -> bool {
        self.positions(id).all(|bit| match self.word(bit) {
            Some((word, flag)) => word.load(Ordering::Relaxed) & flag != 0,
            // Not reached (positions are masked to the size); "maybe" is the safe answer.
            None => true,
        })
    }

    /// The share of bits set, 0 to 1.
    pub fn fill(&self) -> f64 {
        let set: u64 = self
            .words
            .iter()
            .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
            .sum();
        set as f64 / (self.mask as f64 + 1.0)
    }

    /// The chance that an id never inserted is reported as maybe inserted, at this fill.
    pub fn false_positive_rate(&self) -> f64 {
        self.fill().powi(HASHES as i32)
    }

    /// The bytes the filter holds.
    pub fn memory(&self) -> usize {
        self.words.len() * std::mem::size_of::<AtomicU64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inserted_id_is_always_found() {
        let f = RevokedFilter::new(1 << 16);
        let ids: Vec<String> = (0..5_000).map(|i| format!("jti-{i}")).collect();
        for id in &ids {
            f.insert(id);
        }
        assert!(ids.iter().all(|id| f.may_contain(id)));
    }

    #[test]
    fn an_empty_filter_finds_nothing_and_a_sparse_one_little() {
        let f = RevokedFilter::new(1 << 16);
        assert!(!f.may_contain("x"));
        assert_eq!(f.fill(), 0.0);
        for i in 0..1_000 {
            f.insert(&format!("in-{i}"));
        }
        let false_hits = (0..10_000)
            .filter(|i| f.may_contain(&format!("out-{i}")))
            .count();
        // 1,000 ids in 65,536 bits: about one in 10^6 expected; 1 % would be a broken hash.
        assert!(false_hits < 100, "{false_hits}");
    }

    #[test]
    fn size_is_fixed_and_a_saturated_filter_says_maybe_to_everything() {
        let f = RevokedFilter::new(100);
        assert_eq!(f.memory(), 128 / 8);
        for i in 0..10_000 {
            f.insert(&format!("in-{i}"));
        }
        assert_eq!(f.memory(), 16);
        assert_eq!(f.fill(), 1.0);
        assert!(f.may_contain("never inserted"));
        assert_eq!(f.false_positive_rate(), 1.0);
    }
}
