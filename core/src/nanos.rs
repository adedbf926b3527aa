//! Durations as whole nanoseconds in a `u64`, saturating at about 584 years.
//!
//! `Duration::as_nanos` returns a `u128`; converting it, comparing it or
//! dividing by it links 128-bit multiplication and division routines
//! (`__multi3`, `__udivti3`: about 1 KB) into every browser build that uses
//! the breaker, the adaptive limit, jitter or the rate limiter's clock.
//! Past 584 years the exact count no longer matters to any of them, so they
//! count in `u64` here.

use std::time::Duration;

/// Whole nanoseconds in `d`, saturating at `u64::MAX` (about 584 years).
#[inline]
pub(crate) fn saturating_nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_exactly_below_the_cap_and_saturates_above_it() {
        assert_eq!(saturating_nanos(Duration::ZERO), 0);
        assert_eq!(saturating_nanos(Duration::new(3, 7)), 3_000_000_007);
        let cap = Duration::from_nanos(u64::MAX);
        assert_eq!(saturating_nanos(cap), u64::MAX);
        assert_eq!(saturating_nanos(cap + Duration::from_nanos(1)), u64::MAX);
        assert_eq!(saturating_nanos(Duration::MAX), u64::MAX);
        // Just under the cap: whole seconds plus a fraction, still exact.
        let below = cap - Duration::from_nanos(1);
        assert_eq!(saturating_nanos(below), u64::MAX - 1);
    }
}
