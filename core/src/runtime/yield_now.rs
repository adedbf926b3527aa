//! Giving other tasks a turn.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Lets every other ready task run once before this one continues.
///
/// The returned future wakes its own task and returns `Pending` once, then
/// completes. Every executor staunch has an adapter for queues a task that
/// woke itself while running behind the tasks already ready, so after
/// `yield_now().await` the task resumes only after each task that was
/// ready when it yielded has been polled once:
///
/// - smol, tokio (current-thread and multi-thread) and
///   [`VirtualRuntime`](crate::testing::VirtualRuntime) put it at the back
///   of their run queue (`VirtualRuntime` runs ready tasks first in, first
///   out);
/// - on `staunch-web`, tasks started through `Web` also hand the JavaScript
///   event loop a macrotask turn (timers, input, rendering) at least every
///   256 polls, so a loop of `yield_now` never freezes a page.
///
/// Use it to break up long stretches of work that never await anything
/// else. `Timer::sleep(Duration::ZERO)` is a yield point too.
///
/// # Example
///
/// ```
/// use staunch::runtime::{SpawnExt, yield_now};
/// use staunch::testing::VirtualRuntime;
/// use std::sync::{Arc, Mutex};
///
/// let rt = VirtualRuntime::new();
/// let order = Arc::new(Mutex::new(Vec::new()));
/// # let out =
/// rt.block_on({
///     let (rt, order) = (rt.clone(), order.clone());
///     async move {
///         let other = rt.spawn({
///             let order = order.clone();
///             async move { order.lock().unwrap().push("other task"); Ok::<_, ()>(()) }
///         })?;
///         yield_now().await; // the spawned task runs first
///         order.lock().unwrap().push("after the yield");
///         other.await.ok();
///         Ok::<_, staunch::runtime::SpawnError>(())
///     }
/// });
/// # out.unwrap().unwrap();
/// assert_eq!(*order.lock().unwrap(), ["other task", "after the yield"]);
/// ```
///
/// # Cancel safety
///
/// Cancel-safe: dropping it has no effect.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "yield_now does nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

pin_project_lite::pin_project! {
    /// A sleep that is a yield point even when it is already due: for
    /// adapter authors whose executor's timer completes a zero or past sleep
    /// on its first poll.
    ///
    /// staunch promises that every `Timer::sleep`, `sleep(Duration::ZERO)`
    /// included, lets other ready tasks run (as [`yield_now`] does). Wrap
    /// the executor's own sleep future in this to keep that promise.
    ///
    /// ```
    /// use staunch::runtime::YieldingSleep;
    /// use std::task::{Context, Poll};
    ///
    /// let mut sleep = Box::pin(YieldingSleep::new(std::future::ready(())));
    /// let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    /// assert!(sleep.as_mut().poll(&mut cx).is_pending()); // yields once
    /// assert!(sleep.as_mut().poll(&mut cx).is_ready());
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As cancel-safe as the sleep it wraps.
    #[derive(Debug)]
    #[must_use = "a sleep does nothing unless awaited"]
    pub struct YieldingSleep<S> {
        #[pin]
        sleep: S,
        polled: bool,
        // The inner sleep completed on the first poll; it is not polled
        // again (some timers, like async-io's, never complete twice).
        done: bool,
    }
}

impl<S> YieldingSleep<S> {
    /// Wraps `sleep`.
    pub fn new(sleep: S) -> YieldingSleep<S> {
        YieldingSleep {
            sleep,
            polled: false,
            done: false,
        }
    }

    /// The wrapped sleep.
    pub fn get_ref(&self) -> &S {
        &self.sleep
    }

    /// The wrapped sleep, pinned, e.g. to reset a tokio sleep.
    pub fn sleep_mut(self: Pin<&mut Self>) -> Pin<&mut S> {
        self.project().sleep
    }
}

impl<S: Future<Output = ()>> Future for YieldingSleep<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(());
        }
        let first_poll = !std::mem::replace(this.polled, true);
        match this.sleep.poll(cx) {
            Poll::Ready(()) if first_poll => {
                *this.done = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in sleep that is due once its flag is set.
    struct Due(bool);

    impl Future for Due {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    #[test]
    fn the_wrapped_sleep_can_be_read_and_reset_in_place() {
        let mut sleep = Box::pin(YieldingSleep::new(Due(false)));
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        assert!(!sleep.get_ref().0);
        assert!(sleep.as_mut().poll(&mut cx).is_pending(), "the yield");
        assert!(sleep.as_mut().poll(&mut cx).is_pending(), "not due yet");
        // Reset in place, as a caller would reset a tokio sleep's deadline.
        sleep.as_mut().sleep_mut().get_mut().0 = true;
        assert!(sleep.get_ref().0);
        assert!(sleep.as_mut().poll(&mut cx).is_ready());
    }
}
