//! A tiny seeded pseudo-random generator (SplitMix64) for jitter.
//!
//! Jitter needs spread, not cryptographic strength; SplitMix64 passes
//! BigCrush, needs one `u64` of state and is trivially `Clone`, which keeps
//! [`Backoff`](super::Backoff) a pure value: same seed, same delays.

use std::time::Duration;

use crate::nanos::{saturating_add, saturating_nanos, saturating_sub};

/// SplitMix64 (Steele, Lea and Flood, 2014).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) const fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// A uniformly spread duration in `[low, high]` (inclusive), to the
    /// nanosecond. `low > high` is treated as `[high, low]`.
    pub(crate) fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let (a, b) = (saturating_nanos(low), saturating_nanos(high));
        if a == u64::MAX || b == u64::MAX {
            // 584 years or more: `nanos` has saturated.
            return self.between_wide(low.min(high), low.max(high));
        }
        // In u64 nanoseconds: `Duration` arithmetic costs the browser build
        // several hundred bytes here.
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        Duration::from_nanos(low + self.up_to(high - low))
    }

    /// `between` for a range reaching past what a `u64` of nanoseconds holds
    /// (584 years): a whole number of seconds from `low`, so the whole range
    /// stays reachable (no cut at the u64 cap) without float arithmetic; a
    /// second is nothing at that scale.
    #[cold]
    fn between_wide(&mut self, low: Duration, high: Duration) -> Duration {
        let secs = self.up_to(saturating_sub(high, low).as_secs());
        saturating_add(low, Duration::from_secs(secs))
    }

    /// A uniformly spread number in `[0, max]`.
    fn up_to(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            self.next_u64()
        } else {
            // Multiply-shift: maps a 64-bit draw onto [0, max] without division.
            mul_high(self.next_u64(), max + 1)
        }
    }
}

/// The high 64 bits of the 128-bit product `a * b`, from four 32-bit
/// products: the same number as `(u128::from(a) * u128::from(b)) >> 64`,
/// without the 128-bit multiplication routine (`__multi3`) that the
/// browser build would otherwise link for it.
fn mul_high(a: u64, b: u64) -> u64 {
    const LOW: u64 = 0xFFFF_FFFF;
    let (a_hi, a_lo) = (a >> 32, a & LOW);
    let (b_hi, b_lo) = (b >> 32, b & LOW);
    let hi_lo = a_hi * b_lo;
    // At most (2^32 - 1)^2 + 2 (2^32 - 1) = 2^64 - 1: no overflow.
    let middle = ((a_lo * b_lo) >> 32) + (hi_lo & LOW) + a_lo * b_hi;
    a_hi * b_hi + (hi_lo >> 32) + (middle >> 32)
}

/// The SplitMix64 output function; also used to derive per-run seeds.
pub(crate) const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed that differs between processes where the platform offers entropy
/// (std's hash-map keys), and between calls within a process.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// A seed that differs between page loads and between calls within one.
///
/// std's hash-map keys are fixed on wasm32-unknown-unknown (it has no
/// entropy source), so every browser would draw the same jitter and retry in
/// step; JavaScript's `Math.random` is seeded per page, and is also far
/// smaller than SipHash in the module.
#[cfg(target_arch = "wasm32")]
pub(crate) fn fresh_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    // 53 random bits: all the precision an f64 in [0, 1) has.
    let random = (js_sys::Math::random() * (1u64 << 53) as f64) as u64;
    mix(random ^ CALLS.fetch_add(1, Ordering::Relaxed).rotate_left(53))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn between_stays_inside_inclusive_bounds_even_when_reversed() {
        let mut rng = SplitMix64::new(1);
        let (lo, hi) = (Duration::from_millis(5), Duration::from_millis(6));
        for _ in 0..1000 {
            let d = rng.between(hi, lo);
            assert!(lo <= d && d <= hi, "{d:?}");
        }
        assert_eq!(rng.between(lo, lo), lo);
        let huge = rng.between(Duration::ZERO, Duration::MAX);
        assert!(huge <= Duration::MAX);
    }

    #[test]
    fn mul_high_is_the_high_half_of_the_128_bit_product() {
        let edges = [
            0,
            1,
            2,
            u64::from(u32::MAX),
            1 << 32,
            u64::MAX - 1,
            u64::MAX,
        ];
        let wide = |a: u64, b: u64| ((u128::from(a) * u128::from(b)) >> 64) as u64;
        for a in edges {
            for b in edges {
                assert_eq!(mul_high(a, b), wide(a, b), "{a} * {b}");
            }
        }
        let mut rng = SplitMix64::new(3);
        for _ in 0..10_000 {
            let (a, b) = (rng.next_u64(), rng.next_u64());
            assert_eq!(mul_high(a, b), wide(a, b), "{a} * {b}");
        }
    }

    #[test]
    fn fresh_seeds_differ_between_calls() {
        assert_ne!(fresh_seed(), fresh_seed());
    }
}
