//! A generic timer backed by the `futures-timer` crate.

use std::time::Duration;

use super::{Instant, Timer};

/// A [`Timer`] backed by `futures-timer`'s helper thread, for executors that
/// bring no timer of their own. Its clock is [`std::time::Instant`], so it is
/// for native targets only (enable feature `futures-timer`); on wasm32 the
/// feature is a compile error that names the timer to use there
/// (`staunch_web::Web`), since `std::time::Instant` panics at first use.
///
/// A sleep of [`Duration::MAX`] never completes (it does not arm a timer).
///
/// # Example
///
/// ```
/// use staunch::runtime::{FuturesTimer, Timer};
/// use std::time::Duration;
///
/// let timer = FuturesTimer::new();
/// futures::executor::block_on(timer.sleep(Duration::from_millis(1)));
/// assert!(timer.now().since_origin() >= Duration::from_millis(1));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FuturesTimer {
    origin: std::time::Instant,
}

impl FuturesTimer {
    /// A timer whose origin is now.
    #[must_use]
    pub fn new() -> FuturesTimer {
        FuturesTimer {
            origin: std::time::Instant::now(),
        }
    }
}

impl Default for FuturesTimer {
    fn default() -> FuturesTimer {
        FuturesTimer::new()
    }
}

/// The sleep future of [`FuturesTimer`].
#[derive(Debug)]
#[must_use = "a sleep does nothing unless awaited"]
pub struct FuturesTimerSleep(Option<futures_timer::Delay>);

impl std::future::Future for FuturesTimerSleep {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        match &mut self.0 {
            Some(delay) => std::pin::Pin::new(delay).poll(cx),
            None => std::task::Poll::Pending,
        }
    }
}

impl Timer for FuturesTimer {
    type Sleep = FuturesTimerSleep;

    fn now(&self) -> Instant {
        Instant::from_origin(self.origin.elapsed())
    }

    fn sleep(&self, duration: Duration) -> FuturesTimerSleep {
        // Beyond ~30 years the helper thread's deadline arithmetic could
        // overflow; such a sleep is "never" in practice.
        const NEVER_THRESHOLD: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);
        if duration >= NEVER_THRESHOLD {
            FuturesTimerSleep(None)
        } else {
            FuturesTimerSleep(Some(futures_timer::Delay::new(duration)))
        }
    }
}
