//! The timer half of the runtime seam.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{Instant, MaybeSend, MaybeSync};

/// A monotonic clock that can put a future to sleep.
///
/// This is the only thing the time-based combinators ([`timeout`],
/// [`deadline`](crate::timeout::deadline), retry back-off, breaker open
/// durations) ask of a runtime. It is a value the caller passes in, never a
/// global, so a test can hand in a virtual clock
/// ([`VirtualRuntime`](crate::testing::VirtualRuntime)) and get exact,
/// instant results.
///
/// `sleep` returns an associated future type, so the hot path never boxes.
/// On native targets the sleep future must be `Send` (every native timer's
/// is); on `wasm32` it need not be.
///
/// # Implementing
///
/// ```
/// use staunch::runtime::{Instant, Timer};
/// use std::time::Duration;
///
/// /// A timer whose sleeps finish at once: handy for code that only needs `now`.
/// #[derive(Clone, Copy)]
/// struct Frozen;
///
/// impl Timer for Frozen {
///     type Sleep = std::future::Ready<()>;
///     fn now(&self) -> Instant {
///         Instant::ORIGIN
///     }
///     fn sleep(&self, _: Duration) -> Self::Sleep {
///         std::future::ready(())
///     }
/// }
/// # futures::executor::block_on(Frozen.sleep(Duration::from_secs(1)));
/// ```
///
/// [`timeout`]: crate::timeout::timeout
pub trait Timer: MaybeSend + MaybeSync {
    /// The future returned by [`sleep`](Timer::sleep).
    type Sleep: Future<Output = ()> + MaybeSend + 'static;

    /// The current instant on this timer's clock. Never goes backwards.
    fn now(&self) -> Instant;

    /// [`now`](Timer::now) as whole nanoseconds since the clock's origin,
    /// saturating at `u64::MAX` (about 584 years).
    ///
    /// The default builds the [`Instant`] and converts it. A clock that
    /// counts nanoseconds anyway can answer directly: hot paths that need
    /// only a number (the rate limiter's check) then skip the round trip
    /// through `Duration`. It must agree with `now`.
    ///
    /// ```
    /// use staunch::runtime::Timer;
    /// use staunch::testing::VirtualRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// rt.advance(Duration::from_millis(1500));
    /// assert_eq!(rt.now_nanos(), 1_500_000_000);
    /// assert_eq!(rt.now().since_origin(), Duration::from_nanos(rt.now_nanos()));
    /// ```
    fn now_nanos(&self) -> u64 {
        crate::nanos::saturating_nanos(self.now().since_origin())
    }

    /// A future that completes once `duration` has passed.
    ///
    /// A zero duration completes at the first poll (implementations may yield
    /// once). [`Duration::MAX`] never completes; drop the future to stop it.
    /// Dropping the future cancels the sleep.
    fn sleep(&self, duration: Duration) -> Self::Sleep;

    /// A future that completes once the clock reaches `deadline`.
    ///
    /// A deadline already past completes at the first poll;
    /// [`Instant::NEVER`] never completes.
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        if deadline.is_never() {
            return self.sleep(Duration::MAX);
        }
        self.sleep(deadline.saturating_duration_since(self.now()))
    }
}

impl<T: Timer + ?Sized> Timer for &T {
    type Sleep = T::Sleep;
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
    fn sleep(&self, duration: Duration) -> Self::Sleep {
        (**self).sleep(duration)
    }
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        (**self).sleep_until(deadline)
    }
}

impl<T: Timer + ?Sized> Timer for Arc<T>
where
    Arc<T>: MaybeSend + MaybeSync,
{
    type Sleep = T::Sleep;
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
    fn sleep(&self, duration: Duration) -> Self::Sleep {
        (**self).sleep(duration)
    }
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        (**self).sleep_until(deadline)
    }
}
