//! Durations as whole nanoseconds in a `u64`, saturating at about 584 years.
//!
//! `Duration::as_nanos` returns a `u128`; converting it, comparing it or
//! dividing by it links 128-bit multiplication and division routines
//! (`__multi3`, `__udivti3`: about 1 KB) into every browser build that uses
//! the breaker, the adaptive limit, jitter or the rate limiter's clock.
//! Past 584 years the exact count no longer matters to any of them, so they
//! count in `u64` here.
//!
//! Also here: `Duration`'s saturating addition and subtraction, exact over
//! the whole range, but without the overflow panic of std's versions. Those
//! end in `Duration::new`, whose carry check the optimiser cannot prove
//! unreachable, so each use linked a panic with its location and message
//! into the browser build.

use std::time::Duration;

const NANOS_PER_SEC: u32 = 1_000_000_000;

/// A duration from whole seconds and a count of nanoseconds below one
/// second. The remainder changes nothing for such a count, but tells the
/// optimiser that `Duration::new` has no carry to make, so its overflow
/// panic is not linked.
#[inline]
fn duration(secs: u64, subsec_nanos: u32) -> Duration {
    Duration::new(secs, subsec_nanos % NANOS_PER_SEC)
}

/// `a.saturating_add(b)`: `Duration::MAX` where the sum overflows.
pub(crate) fn saturating_add(a: Duration, b: Duration) -> Duration {
    let Some(mut secs) = a.as_secs().checked_add(b.as_secs()) else {
        return Duration::MAX;
    };
    let mut nanos = a.subsec_nanos() + b.subsec_nanos();
    if nanos >= NANOS_PER_SEC {
        nanos -= NANOS_PER_SEC;
        let Some(carried) = secs.checked_add(1) else {
            return Duration::MAX;
        };
        secs = carried;
    }
    duration(secs, nanos)
}

/// `a.saturating_sub(b)`: zero where `b` is the longer.
pub(crate) fn saturating_sub(a: Duration, b: Duration) -> Duration {
    let Some(mut secs) = a.as_secs().checked_sub(b.as_secs()) else {
        return Duration::ZERO;
    };
    let (an, bn) = (a.subsec_nanos(), b.subsec_nanos());
    let nanos = if an >= bn {
        an - bn
    } else {
        let Some(borrowed) = secs.checked_sub(1) else {
            return Duration::ZERO;
        };
        secs = borrowed;
        an + NANOS_PER_SEC - bn
    };
    duration(secs, nanos)
}

/// Whole nanoseconds in `d`, saturating at `u64::MAX` (about 584 years).
///
/// The seconds are compared with the largest count that fits rather than
/// multiplied with an overflow check: on wasm32 that check is a 128-bit
/// multiplication (`__multi3`, linked into every browser build that reads a
/// clock or jitters a delay).
#[inline]
pub(crate) fn saturating_nanos(d: Duration) -> u64 {
    const MAX_SECS: u64 = u64::MAX / NANOS_PER_SEC as u64;
    if d.as_secs() > MAX_SECS {
        return u64::MAX;
    }
    (d.as_secs() * u64::from(NANOS_PER_SEC)).saturating_add(u64::from(d.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_arithmetic_agrees_with_std_over_the_whole_range() {
        let edges = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::new(0, NANOS_PER_SEC - 1),
            Duration::new(1, 0),
            Duration::new(1, 1),
            Duration::new(3, 999_999_998),
            Duration::new(u64::MAX - 1, 999_999_999),
            Duration::new(u64::MAX, 0),
            Duration::new(u64::MAX, 1),
            Duration::MAX,
        ];
        for a in edges {
            for b in edges {
                assert_eq!(saturating_add(a, b), a.saturating_add(b), "{a:?} + {b:?}");
                assert_eq!(saturating_sub(a, b), a.saturating_sub(b), "{a:?} - {b:?}");
            }
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            x = crate::rng::mix(x);
            let a = Duration::new(x >> 3, (x % u64::from(NANOS_PER_SEC)) as u32);
            let y = crate::rng::mix(x);
            let b = Duration::new(y >> 3, (y % u64::from(NANOS_PER_SEC)) as u32);
            assert_eq!(saturating_add(a, b), a.saturating_add(b));
            assert_eq!(saturating_sub(a, b), a.saturating_sub(b));
        }
    }

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
