//! The limiter's absolute clock: a [`Timer`]'s monotonic instants moved onto
//! the Unix epoch, so the stored TAT means the same to every limiter and
//! process that shares it (governor's times are relative to each limiter's
//! creation, so two of them sharing state disagree: its issue #252).

use std::time::Duration;

use crate::nanos::saturating_nanos;
use crate::runtime::BoxTimer;
use crate::runtime::Timer;

/// A timer plus the Unix time of its origin.
///
/// # Invariant
///
/// [`now_ns`](EpochClock::now_ns) never exceeds `u64::MAX - headroom_ns`,
/// where the headroom is the limiter's `burst·T`: the clock stops there
/// (in 2554, less the headroom) instead of wrapping. So the GCRA's sums,
/// `now + burst·T` at most, cannot overflow, and a check needs no
/// saturating arithmetic past this one clamp.
#[derive(Debug)]
pub(crate) struct EpochClock {
    timer: BoxTimer,
    /// Nanoseconds from the Unix epoch to the timer's origin.
    origin_ns: u64,
    /// The latest timer reading honoured: `u64::MAX - headroom - origin`.
    last_reading_ns: u64,
}

impl EpochClock {
    /// `timer`, with its origin placed at `origin` after the Unix epoch, or
    /// (when `None`) wherever the wall clock says it is now, keeping
    /// `headroom_ns` below `u64::MAX` free. `None` when the origin itself
    /// lies within the headroom of the end of `u64` nanoseconds.
    pub(crate) fn new(
        timer: BoxTimer,
        origin: Option<Duration>,
        headroom_ns: u64,
    ) -> Option<EpochClock> {
        let origin =
            origin.unwrap_or_else(|| unix_time_now().saturating_sub(timer.now().since_origin()));
        let origin_ns = saturating_nanos(origin);
        let last_reading_ns = (u64::MAX - headroom_ns).checked_sub(origin_ns)?;
        Some(EpochClock {
            timer,
            origin_ns,
            last_reading_ns,
        })
    }

    /// Nanoseconds since the Unix epoch, at most `u64::MAX - headroom`.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        self.at(self.reading())
    }

    /// The timer's reading now: nanoseconds since its origin, unclamped.
    #[inline]
    pub(crate) fn reading(&self) -> u64 {
        self.timer.now_nanos()
    }

    /// `reading` as nanoseconds since the Unix epoch, at most
    /// `u64::MAX - headroom`.
    #[inline]
    pub(crate) fn at(&self, reading: u64) -> u64 {
        // No overflow: `origin + last reading` is `u64::MAX - headroom`.
        reading.min(self.last_reading_ns) + self.origin_ns
    }

    /// [`at`](Self::at) for a reading known to lie below
    /// [`first_clamped_reading`](Self::first_clamped_reading), where the
    /// clamp changes nothing: one add.
    #[inline]
    pub(crate) fn at_unclamped(&self, reading: u64) -> u64 {
        reading + self.origin_ns
    }

    /// The first reading that [`at`](Self::at) clamps.
    pub(crate) fn first_clamped_reading(&self) -> u64 {
        // No overflow: the headroom is at least one nanosecond.
        self.last_reading_ns + 1
    }

    pub(crate) fn timer(&self) -> &BoxTimer {
        &self.timer
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn unix_time_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

// `SystemTime::now()` panics on wasm32-unknown-unknown: ask JavaScript.
#[cfg(target_arch = "wasm32")]
fn unix_time_now() -> Duration {
    Duration::from_secs_f64((js_sys::Date::now() / 1000.0).max(0.0))
}
