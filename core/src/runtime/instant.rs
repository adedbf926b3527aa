//! staunch's own monotonic instant.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

use crate::nanos;

/// A point in time on a [`Timer`](super::Timer)'s monotonic clock, measured as
/// the time elapsed since that timer's origin.
///
/// staunch does not use [`std::time::Instant`] because `Instant::now()` panics
/// on `wasm32-unknown-unknown`, and because a virtual clock needs instants of
/// its own. Instants from different timers are not comparable in any useful
/// way; compare only instants that came from the same timer.
///
/// All arithmetic saturates: adding [`Duration::MAX`] gives
/// [`Instant::NEVER`], a deadline that is never reached, and subtracting a
/// later instant gives [`Duration::ZERO`]. Nothing here panics.
///
/// # Example
///
/// ```
/// use staunch::runtime::Instant;
/// use std::time::Duration;
///
/// let start = Instant::from_origin(Duration::from_secs(5));
/// let later = start + Duration::from_millis(250);
/// assert_eq!(later - start, Duration::from_millis(250));
/// assert_eq!(start - later, Duration::ZERO); // saturates, never panics
/// assert!((start + Duration::MAX).is_never());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

impl Instant {
    /// The origin of the clock: the instant zero.
    pub const ORIGIN: Instant = Instant(Duration::ZERO);

    /// A deadline that is never reached. Sleeping until it never wakes.
    pub const NEVER: Instant = Instant(Duration::MAX);

    /// The instant that lies `since_origin` after the clock's origin.
    #[must_use]
    pub const fn from_origin(since_origin: Duration) -> Instant {
        Instant(since_origin)
    }

    /// How long after the clock's origin this instant lies.
    #[must_use]
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// Whether this instant is [`Instant::NEVER`].
    #[must_use]
    pub const fn is_never(self) -> bool {
        self.0.as_secs() == u64::MAX && self.0.subsec_nanos() == Duration::MAX.subsec_nanos()
    }

    /// `self + duration`, or [`Instant::NEVER`] if that would overflow.
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Instant {
        Instant(nanos::saturating_add(self.0, duration))
    }

    /// `self - duration`, or [`Instant::ORIGIN`] if that would go before it.
    #[must_use]
    pub fn saturating_sub(self, duration: Duration) -> Instant {
        Instant(nanos::saturating_sub(self.0, duration))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    #[must_use]
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        nanos::saturating_sub(self.0, earlier.0)
    }

    /// `self + duration`, or `None` if that would overflow.
    #[must_use]
    pub fn checked_add(self, duration: Duration) -> Option<Instant> {
        self.0.checked_add(duration).map(Instant)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating: never panics.
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = self.saturating_add(rhs);
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// Saturating: never panics.
    fn sub(self, rhs: Duration) -> Instant {
        self.saturating_sub(rhs)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: a later `rhs` gives zero.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_never() {
            f.write_str("Instant::NEVER")
        } else {
            write!(f, "Instant({:?})", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_duration_max_gives_never_instead_of_panicking() {
        let t = Instant::from_origin(Duration::from_secs(1));
        assert_eq!(t + Duration::MAX, Instant::NEVER);
        assert!(Instant::NEVER.is_never());
        assert!(!t.is_never());
        assert_eq!(t.checked_add(Duration::MAX), None);
    }

    #[test]
    fn subtracting_a_later_instant_gives_zero() {
        let a = Instant::from_origin(Duration::from_secs(1));
        let b = Instant::from_origin(Duration::from_secs(3));
        assert_eq!(a - b, Duration::ZERO);
        assert_eq!(b - a, Duration::from_secs(2));
        assert_eq!(a - Duration::from_secs(10), Instant::ORIGIN);
    }
}
