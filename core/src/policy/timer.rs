//! A type-erased timer, so a [`Policy`](super::Policy) is not generic over
//! its runtime. Each sleep is boxed: one small allocation per timeout or
//! retry delay, next to an operation that does I/O.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::{BoxTask, Instant, MaybeSend, MaybeSync, Timer};

trait DynTimer: MaybeSend + MaybeSync {
    fn now(&self) -> Instant;
    fn sleep_boxed(&self, duration: Duration) -> BoxTask;
}

impl<T: Timer> DynTimer for T {
    fn now(&self) -> Instant {
        Timer::now(self)
    }
    fn sleep_boxed(&self, duration: Duration) -> BoxTask {
        Box::pin(self.sleep(duration))
    }
}

/// Any [`Timer`] behind one type.
#[derive(Clone)]
pub(crate) struct AnyTimer(Arc<dyn DynTimer>);

impl AnyTimer {
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
}
