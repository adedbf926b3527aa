//! Timeouts and deadlines for any future, on any [`Timer`].
//!
//! - [`timeout`]: give a future at most a duration.
//! - [`deadline`]: give a future until an instant on the timer's clock.
//! - [`TimeoutExt`]: the same as methods, `fut.timeout(&timer, d)`.
//! - [`call`]: a timeout around a fallible future, with one flat
//!   `Result<T, staunch::Error<E>>`, the shape every other guard returns.
//!
//! A timeout and a [`CancelScope`](crate::scope::CancelScope) deadline can
//! both apply; the earlier wins and the error says which fired: a timeout
//! gives [`Elapsed`], a scope deadline gives
//! [`Cancelled`](crate::scope::Cancelled) with reason `Deadline`.
//!
//! When limits fall on the same instant: of two nested timeouts the inner
//! one reports (`Ok(Err(Elapsed))` from the outer), since a timeout polls
//! its future before its own timer; a scope deadline wins over a timeout
//! whether the timeout is inside or outside the scope's run, since a timed
//! scope checks its deadline before polling and is polled first by a
//! timeout around it.

mod error;

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

pub use error::Elapsed;

use crate::runtime::{Instant, Timer};

/// The limit a [`Timeout`] enforces: a duration from the first poll, or an
/// instant on the timer's clock. A deadline becomes the duration that was
/// left when the timer is armed, which is what [`Elapsed`] reports.
///
/// Packed as `(secs, nanos)` with the kind in the nanos range (a duration
/// below one second's worth of nanos, a deadline at or above it): exact for
/// every `Duration` and `Instant`, and two words fewer to write per
/// `Timeout` than an enum, which shows on the ready path.
#[derive(Clone, Copy)]
struct Limit {
    secs: u64,
    nanos: u32,
}

const NANOS_PER_SEC: u32 = 1_000_000_000;

enum LimitKind {
    After(Duration),
    Until(Instant),
}

impl Limit {
    fn after(duration: Duration) -> Limit {
        Limit {
            secs: duration.as_secs(),
            nanos: duration.subsec_nanos(),
        }
    }

    fn until(at: Instant) -> Limit {
        let since_origin = at.since_origin();
        Limit {
            secs: since_origin.as_secs(),
            nanos: since_origin.subsec_nanos() + NANOS_PER_SEC,
        }
    }

    fn kind(self) -> LimitKind {
        if self.nanos >= NANOS_PER_SEC {
            LimitKind::Until(Instant::from_origin(Duration::new(
                self.secs,
                self.nanos - NANOS_PER_SEC,
            )))
        } else {
            LimitKind::After(Duration::new(self.secs, self.nanos))
        }
    }

    /// The duration reported by [`Elapsed`] (zero for a deadline never armed).
    fn elapsed_after(self) -> Duration {
        match self.kind() {
            LimitKind::After(duration) => duration,
            LimitKind::Until(_) => Duration::ZERO,
        }
    }
}

impl fmt::Debug for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            LimitKind::After(duration) => f.debug_tuple("After").field(&duration).finish(),
            LimitKind::Until(at) => f.debug_tuple("Until").field(&at).finish(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A future limited in time; created by [`timeout`] and [`deadline`].
    ///
    /// Resolves to `Ok(output)` if the inner future finishes first, or
    /// `Err(Elapsed)` once the time is up. The inner future is always polled
    /// before the timer, so a future that is ready at once succeeds even with
    /// a zero timeout, and never pays for a clock read or a timer. A
    /// [`timeout`]'s time starts at the first poll: like every Rust future,
    /// a `Timeout` does nothing until it is polled. When the time is up the
    /// inner future is dropped at once, inside that poll, not later when the
    /// `Timeout` is dropped: its resources (connections, locks, permits) are
    /// released promptly.
    #[must_use = "a Timeout does nothing unless awaited; the inner future will not run"]
    pub struct Timeout<'t, F, T: Timer> {
        #[pin]
        state: State<F, T::Sleep>,
        timer: &'t T,
        limit: Limit,
    }
}

pin_project_lite::pin_project! {
    /// One enum for "running, maybe armed" and "timed out", so a fresh
    /// `Timeout` is one niche value and its ready path checks one field.
    #[project = StateProj]
    enum State<F, S> {
        Running { #[pin] future: F, #[pin] sleep: Option<S> },
        Elapsed,
    }
}

impl<F, T: Timer> Timeout<'_, F, T> {
    /// The future inside, unless the time ran out (it is dropped at once
    /// then, so there is nothing left to return).
    #[must_use]
    pub fn get_ref(&self) -> Option<&F> {
        match &self.state {
            State::Running { future, .. } => Some(future),
            State::Elapsed => None,
        }
    }

    /// The future inside, mutably, unless the time ran out.
    #[must_use]
    pub fn get_mut(&mut self) -> Option<&mut F> {
        match &mut self.state {
            State::Running { future, .. } => Some(future),
            State::Elapsed => None,
        }
    }

    /// Takes the future back out, giving up the timeout, unless the time
    /// ran out.
    ///
    /// ```
    /// use staunch::timeout::timeout;
    /// use std::time::Duration;
    ///
    /// let rt = staunch::testing::VirtualRuntime::new();
    /// let limited = timeout(&rt, Duration::from_secs(1), async { 7 });
    /// let unlimited = limited.into_inner().expect("not polled, so not timed out");
    /// assert_eq!(rt.block_on(unlimited).unwrap(), 7);
    /// ```
    #[must_use]
    pub fn into_inner(self) -> Option<F> {
        match self.state {
            State::Running { future, .. } => Some(future),
            State::Elapsed => None,
        }
    }
}

impl<F, T: Timer> fmt::Debug for Timeout<'_, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (armed, timed_out) = match &self.state {
            State::Running { sleep, .. } => (sleep.is_some(), false),
            State::Elapsed => (false, true),
        };
        f.debug_struct("Timeout")
            .field("limit", &self.limit)
            .field("armed", &armed)
            .field("timed_out", &timed_out)
            .finish()
    }
}

impl<F: Future, T: Timer> Future for Timeout<'_, F, T> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let StateProj::Running { future, mut sleep } = this.state.as_mut().project() else {
            // Already timed out (and the inner future dropped): stay timed out.
            return Poll::Ready(Err(Elapsed {
                after: this.limit.elapsed_after(),
            }));
        };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        if sleep.is_none() {
            // Armed only once the inner future is pending: a future that is
            // ready at once costs no clock read and no timer.
            let armed = match this.limit.kind() {
                LimitKind::After(duration) => this.timer.sleep(duration),
                LimitKind::Until(at) => {
                    *this.limit = Limit::after(if at.is_never() {
                        Duration::MAX
                    } else {
                        at.saturating_duration_since(this.timer.now())
                    });
                    this.timer.sleep_until(at)
                }
            };
            sleep.set(Some(armed));
        }
        match sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => {
                this.state.set(State::Elapsed);
                Poll::Ready(Err(Elapsed {
                    after: this.limit.elapsed_after(),
                }))
            }
            _ => Poll::Pending,
        }
    }
}

/// Runs `future` for at most `duration` on `timer`'s clock.
///
/// The time starts at the first poll (a Rust future does nothing before
/// that). A zero duration still polls the future once (a ready future
/// succeeds, without reading the clock); [`Duration::MAX`] never fires.
///
/// # Errors
///
/// [`Elapsed`] (carrying `duration`) if the time ran out; the inner future
/// is dropped at that moment.
///
/// # Cancel safety
///
/// Dropping the `Timeout` drops the inner future; it is as cancel-safe as the
/// future it wraps.
///
/// # Example
///
/// ```
/// use staunch::runtime::Timer;
/// use staunch::testing::VirtualRuntime;
/// use staunch::timeout::{timeout, Elapsed};
/// use std::time::Duration;
///
/// let rt = VirtualRuntime::new();
/// let result = rt.block_on(timeout(&rt, Duration::from_secs(1), rt.sleep(Duration::from_secs(5))));
/// assert_eq!(result.unwrap(), Err(Elapsed { after: Duration::from_secs(1) }));
/// ```
pub fn timeout<T: Timer, F: IntoFuture>(
    timer: &T,
    duration: Duration,
    future: F,
) -> Timeout<'_, F::IntoFuture, T> {
    let future = future.into_future();
    Timeout {
        state: State::Running {
            future,
            sleep: None,
        },
        timer,
        limit: Limit::after(duration),
    }
}

/// Runs `future` until the clock of `timer` reaches `at`.
///
/// A deadline already past still polls the future once;
/// [`Instant::NEVER`] never fires.
///
/// # Errors
///
/// [`Elapsed`] (with the time that was left at the first poll) if the
/// deadline passed first.
///
/// # Cancel safety
///
/// As for [`timeout`].
///
/// # Example
///
/// ```
/// use staunch::runtime::Timer;
/// use staunch::testing::VirtualRuntime;
/// use staunch::timeout::deadline;
/// use std::time::Duration;
///
/// let rt = VirtualRuntime::new();
/// let at = rt.now() + Duration::from_secs(2);
/// let out = rt.block_on(deadline(&rt, at, async { 7 }));
/// assert_eq!(out.unwrap(), Ok(7));
/// ```
pub fn deadline<T: Timer, F: IntoFuture>(
    timer: &T,
    at: Instant,
    future: F,
) -> Timeout<'_, F::IntoFuture, T> {
    let future = future.into_future();
    Timeout {
        state: State::Running {
            future,
            sleep: None,
        },
        timer,
        limit: Limit::until(at),
    }
}

/// Runs `op` for at most `duration`, with one flat result: the guard form
/// of [`timeout`], for code that speaks [`staunch::Error`](crate::Error)
/// like the other guards (breaker, bulkhead, fallback, scope). `op` is a
/// future of `Result<T, E>` or another staunch call (see
/// [`Fallible`](crate::Fallible)).
///
/// # Errors
///
/// [`Error::Timeout`](crate::Error::Timeout) when the time ran out;
/// otherwise the operation's error ([`Error::Inner`](crate::Error::Inner)
/// for a plain future's own error).
///
/// # Cancel safety
///
/// As for [`timeout`].
///
/// ```
/// use staunch::testing::VirtualRuntime;
/// use staunch::timeout;
/// use std::time::Duration;
///
/// let rt = VirtualRuntime::new();
/// let ok = rt.block_on(timeout::call(&rt, Duration::from_secs(1), async { Ok::<_, std::io::Error>(7) }));
/// assert_eq!(ok.unwrap().unwrap(), 7);
/// let slow = timeout::call(&rt, Duration::from_secs(1), std::future::pending::<Result<(), String>>());
/// assert!(rt.block_on(slow).unwrap().unwrap_err().is_timeout());
/// ```
pub fn call<R, G>(
    timer: &R,
    duration: Duration,
    op: G,
) -> crate::Guarded<impl Future<Output = Result<G::Ok, crate::Error<G::Err>>>>
where
    R: Timer,
    G: crate::Fallible,
{
    let limited = timeout(timer, duration, crate::fallible::lifted(op));
    crate::Guarded::new(async move {
        match limited.await {
            Ok(out) => out,
            Err(elapsed) => Err(crate::Error::Timeout(elapsed)),
        }
    })
}

/// [`timeout`] and [`deadline`] as methods on every future.
///
/// ```
/// use staunch::timeout::TimeoutExt;
/// use staunch::testing::VirtualRuntime;
/// use std::time::Duration;
///
/// let rt = VirtualRuntime::new();
/// let out = rt.block_on(async { 1 }.timeout(&rt, Duration::from_millis(10)));
/// assert_eq!(out.unwrap(), Ok(1));
/// ```
pub trait TimeoutExt: IntoFuture + Sized {
    /// See [`timeout`].
    fn timeout<T: Timer>(self, timer: &T, duration: Duration) -> Timeout<'_, Self::IntoFuture, T> {
        timeout(timer, duration, self)
    }

    /// See [`deadline`].
    fn deadline<T: Timer>(self, timer: &T, at: Instant) -> Timeout<'_, Self::IntoFuture, T> {
        deadline(timer, at, self)
    }
}

impl<F: IntoFuture> TimeoutExt for F {}

#[cfg(test)]
mod tests;
