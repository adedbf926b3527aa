//! The one type-erased timer inside staunch, so that long-lived values
//! (scopes, breakers, bulkheads, rate limiters, policies) are not generic
//! over their runtime. Each sleep is boxed: one small allocation per
//! timeout, deadline or delay, next to an operation that does I/O; reading
//! the time is one indirect call.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::{BoxTask, Instant, MaybeSend, MaybeSync, Timer};

trait DynTimer: MaybeSend + MaybeSync {
    fn now(&self) -> Instant;
    fn sleep_boxed(&self, duration: Duration) -> BoxTask;
}

impl<T: Timer + 'static> DynTimer for T {
    fn now(&self) -> Instant {
        Timer::now(self)
    }
    fn sleep_boxed(&self, duration: Duration) -> BoxTask {
        Box::pin(self.sleep(duration))
    }
}

/// A [`DynTimer`] that also forwards the timer's own `now_nanos`: only the
/// rate limiter's clock reads it on its hot path, so only [`BoxTimer`]'s
/// vtable carries it (one function fewer per runtime in every other
/// program; [`AnyTimer`] computes it from `now`, as `Timer` does by default).
trait DynClock: DynTimer {
    fn now_nanos(&self) -> u64;
}

impl<T: Timer + 'static> DynClock for T {
    fn now_nanos(&self) -> u64 {
        Timer::now_nanos(self)
    }
}

/// Any [`Timer`] behind one type.
#[derive(Clone)]
pub(crate) struct AnyTimer(Arc<dyn DynTimer>);

impl AnyTimer {
    // On wasm32 a timer may hold JS values; there is one thread there.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub(crate) fn new<T: Timer + 'static>(timer: T) -> AnyTimer {
        AnyTimer(Arc::new(timer))
    }
}

/// Any [`Timer`] behind one type, owned by one value: a `Box` where
/// [`AnyTimer`] has an `Arc`. A boxed timer sits at the pointer itself,
/// whereas reaching the value inside an `Arc<dyn _>` first works out, from
/// the type's alignment, how far past the reference counts it lies: five
/// more instructions on each read of the clock, which the rate limiter's
/// check does once per call.
pub(crate) struct BoxTimer(Box<dyn DynClock>);

impl BoxTimer {
    pub(crate) fn new<T: Timer + 'static>(timer: T) -> BoxTimer {
        BoxTimer(Box::new(timer))
    }
}

/// Any [`Timer`] behind one type, owned by one value and read through
/// [`AnyTimer`]'s vtable: for a value that is itself shared, such as a retry
/// policy, which keeps it inside its one `Arc` (one allocation and one
/// reference count fewer than an [`AnyTimer`] beside it).
pub(crate) struct OwnedTimer(Box<dyn DynTimer>);

impl OwnedTimer {
    pub(crate) fn new<T: Timer + 'static>(timer: T) -> OwnedTimer {
        OwnedTimer(Box::new(timer))
    }
}

/// `Debug` and [`Timer`] for a type-erased timer: every call goes to the
/// `dyn DynTimer` inside.
macro_rules! erased_timer {
    ($name:ident $(, $now_nanos:ident)?) => {
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($name))
            }
        }

        impl Timer for $name {
            type Sleep = BoxTask;
            fn now(&self) -> Instant {
                self.0.now()
            }
            $(
                #[inline]
                fn $now_nanos(&self) -> u64 {
                    self.0.now_nanos()
                }
            )?
            fn sleep(&self, duration: Duration) -> BoxTask {
                self.0.sleep_boxed(duration)
            }
            // `sleep_until` is `Timer`'s own: the time left, read from
            // this clock, then `sleep`. Forwarding it would put one more
            // function in every timer's vtable (about 300 bytes of wasm per
            // runtime a program uses), and the two agree: a deadline is
            // never slept past early, and on a virtual clock exactly.
        }
    };
}

erased_timer!(AnyTimer);
erased_timer!(OwnedTimer);
erased_timer!(BoxTimer, now_nanos);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VirtualRuntime;

    /// A clock that answers `now_nanos` itself (as a TSC clock would).
    #[derive(Clone)]
    struct Counting(u64);

    impl Timer for Counting {
        type Sleep = BoxTask;
        fn now(&self) -> Instant {
            Instant::from_origin(Duration::from_nanos(self.0))
        }
        fn now_nanos(&self) -> u64 {
            self.0
        }
        fn sleep(&self, _: Duration) -> BoxTask {
            Box::pin(std::future::pending())
        }
    }

    /// A clock whose `now_nanos` is told apart from its `now`, to see which
    /// one a wrapper forwards.
    struct Marked;

    impl Timer for Marked {
        type Sleep = BoxTask;
        fn now(&self) -> Instant {
            Instant::ORIGIN
        }
        fn now_nanos(&self) -> u64 {
            7
        }
        fn sleep(&self, _: Duration) -> BoxTask {
            Box::pin(std::future::pending())
        }
    }

    #[test]
    fn now_nanos_agrees_with_now_and_reaches_through_every_wrapper() {
        let rt = VirtualRuntime::new();
        rt.advance(Duration::from_millis(1500));
        assert_eq!(Timer::now_nanos(&rt), 1_500_000_000);
        assert_eq!(Timer::now_nanos(&AnyTimer::new(rt.clone())), 1_500_000_000);
        assert_eq!(Timer::now_nanos(&&rt), 1_500_000_000);
        // An override is what the rate limiter's erased timer reports; the
        // shared one reads `now`, which a consistent clock agrees with.
        let own = Counting(42);
        assert_eq!(Timer::now_nanos(&AnyTimer::new(own.clone())), 42);
        assert_eq!(Timer::now_nanos(&BoxTimer::new(own.clone())), 42);
        assert_eq!(Timer::now_nanos(&BoxTimer::new(rt.clone())), 1_500_000_000);
        assert_eq!(
            Timer::now_nanos(&OwnedTimer::new(rt.clone())),
            1_500_000_000
        );
        let marked = Marked;
        assert_eq!(Timer::now_nanos(&BoxTimer::new(Marked)), 7);
        assert_eq!(Timer::now_nanos(&AnyTimer::new(marked)), 0);
        assert_eq!(Timer::now_nanos(&std::sync::Arc::new(own)), 42);
        // Saturates instead of wrapping past u64 nanoseconds (584 years).
        let far = VirtualRuntime::new();
        far.advance(Duration::from_secs(u64::MAX / 1_000_000_000 + 1));
        assert_eq!(Timer::now_nanos(&far), u64::MAX);
    }
}
