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
    fn sleep_until_boxed(&self, at: Instant) -> BoxTask;
}

impl<T: Timer + 'static> DynTimer for T {
    fn now(&self) -> Instant {
        Timer::now(self)
    }
    fn sleep_boxed(&self, duration: Duration) -> BoxTask {
        Box::pin(self.sleep(duration))
    }
    fn sleep_until_boxed(&self, at: Instant) -> BoxTask {
        Box::pin(Timer::sleep_until(self, at))
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

impl fmt::Debug for AnyTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnyTimer")
    }
}

impl Timer for AnyTimer {
    type Sleep = BoxTask;
    fn now(&self) -> Instant {
        self.0.now()
    }
    fn sleep(&self, duration: Duration) -> BoxTask {
        self.0.sleep_boxed(duration)
    }
    fn sleep_until(&self, at: Instant) -> BoxTask {
        self.0.sleep_until_boxed(at)
    }
}
