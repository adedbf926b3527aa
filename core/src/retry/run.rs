//! The retry loop.
//!
//! Invariants: an attempt never starts once the call has been cancelled
//! (a cancelled attempt ends the loop before any sleep); an attempt starts
//! only while the elapsed time is within the budget; the backoff is started
//! (and a run seed drawn) only on the first failure, so a call that succeeds
//! at once pays for one clock read and nothing else.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use super::backoff::Backoff;
use super::error::{Errors, RetryError, StopReason};
use super::policy::{Attempt, Decision, Retry, default_decision};
use super::steps::Failed;
use crate::fallible::Lifted;
use crate::rng::mix;
use crate::runtime::BoxTask;
use crate::runtime::{Instant, Timer};
use crate::timeout::Elapsed;
use crate::{Error, ErrorKind, Failure};

impl Retry {
    /// Runs `op` until it succeeds or the policy gives up, sleeping on the
    /// runtime the retry was built with between attempts.
    ///
    /// `op` is called once per attempt with the [`Attempt`] context and
    /// returns a future of `Result<T, E>`, whose failure the classifier
    /// sees as [`Error::Inner`] (or [`Error::Timeout`] when the per-attempt
    /// timeout fired), or another staunch call (see
    /// [`Fallible`](crate::Fallible)), whose open circuit, rejection or
    /// cancellation the classifier sees as what it is.
    ///
    /// # Errors
    ///
    /// [`RetryError`] with the number of attempts, why it stopped and the
    /// last error, once the classifier says stop, the attempts, the backoff
    /// or the budget run out.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future drops the running attempt or the sleep;
    /// no further attempt starts. Each attempt is as cancel-safe as `op`'s
    /// future.
    ///
    /// # Under another guard
    ///
    /// The call is a [`RetryCall`]: awaited, it gives the whole
    /// [`RetryError`]; handed to another guard (`fallback.call(retry.run(..))`,
    /// `breaker.call(..)`, `scope.call(..)`, another retry), it gives that
    /// guard the last attempt's error as the flat [`Error<E>`](Error) it
    /// speaks. So a cancellation that ended the retry stays a cancellation
    /// there: never replaced by a fallback, never counted by a breaker,
    /// never retried by an outer retry.
    ///
    /// Like every staunch call, it is [`IntoFuture`] rather than a
    /// [`Future`]: `.await` it, or call
    /// [`into_future()`](IntoFuture::into_future) where a `Future` proper is
    /// needed (`futures::executor::block_on`, `join_all`, `tokio::spawn`).
    ///
    /// # Example
    ///
    /// ```
    /// use staunch::retry::{Backoff, Retry};
    /// use staunch::runtime::{Instant, Timer};
    /// use staunch::testing::VirtualRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// let retry = Retry::builder(rt.clone())
    ///     .max_attempts(4)
    ///     .backoff(Backoff::exponential(Duration::from_millis(100)))
    ///     .build()?;
    /// let out = rt.block_on(retry.run(|attempt| async move {
    ///     if attempt.number() < 3 { Err("flaky") } else { Ok("done") }
    /// }));
    /// assert_eq!(out.unwrap().unwrap(), "done");
    /// // Slept 100 ms, then 200 ms, exactly.
    /// assert_eq!(rt.now(), Instant::from_origin(Duration::from_millis(300)));
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    ///
    /// A staunch call below is classified as what it is:
    ///
    /// ```
    /// use staunch::breaker::CircuitBreaker;
    /// use staunch::retry::Retry;
    /// use staunch::testing::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::new();
    /// let retry = Retry::new(rt.clone());
    /// let breaker = CircuitBreaker::builder(rt.clone()).consecutive_failures(1).build()?;
    /// let _ = rt.block_on(breaker.call(async { Err::<(), _>("down") })); // trips it
    /// let err = rt.block_on(retry.run(|_| breaker.call(async { Ok::<(), &str>(()) })))
    ///     .unwrap()
    ///     .unwrap_err();
    /// // An open circuit is not retried by default.
    /// assert_eq!(err.attempts(), 1);
    /// assert!(err.is_circuit_open());
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn run<G, F>(&self, op: F) -> RetryCall<'_, F, G>
    where
        F: FnMut(Attempt) -> G,
        G: crate::Fallible,
        G::Err: fmt::Debug + 'static,
    {
        RetryCall(RetryFuture {
            retry: self,
            op,
            start: None,
            backoff: None,
            earlier: Errors::new::<G>(),
            previous: None,
            number: 1,
            limit: None,
            attempt: None,
            sleep: None,
        })
    }

    /// This run's backoff: the first run replays the seed, later runs
    /// derive their own so callers sharing the policy spread out.
    fn fresh_backoff(&self) -> Backoff {
        let run = self.config.runs.fetch_add(1, Ordering::Relaxed);
        let seed = if run == 0 {
            self.config.seed
        } else {
            mix(self.config.seed ^ run)
        };
        self.config.backoff.restarted(seed)
    }

    /// The delay before the next attempt, or why there is none, by the
    /// plain rules: the classification, the attempts and the backoff.
    pub(crate) fn delay_after(
        &self,
        number: u32,
        kind: ErrorKind,
        decision: Decision,
        backoff: &mut Backoff,
    ) -> Result<Duration, StopReason> {
        if kind == ErrorKind::Cancelled {
            return Err(StopReason::Cancelled);
        }
        if decision == Decision::Stop {
            return Err(StopReason::NotRetryable);
        }
        if number >= self.config.max_attempts {
            return Err(StopReason::MaxAttempts);
        }
        let curve = backoff.next().ok_or(StopReason::BackoffEnded)?;
        let delay = match decision {
            Decision::RetryAfter(hint) => hint.min(backoff.max_delay()),
            Decision::Retry | Decision::Stop => curve,
        };
        if delay == Duration::MAX {
            // `Duration::MAX` is staunch's "never": sleeping it would hang
            // the call for ever, so it ends the call instead.
            return Err(StopReason::NeverRetry);
        }
        Ok(delay)
    }

    /// The time since `start` (zero before it is set).
    pub(crate) fn elapsed(&self, start: Option<Instant>) -> Duration {
        start.map_or(Duration::ZERO, |start| {
            self.config.timer.now().saturating_duration_since(start)
        })
    }
}

/// A retried call, from [`Retry::run`]: `.await` it for
/// `Result<T, RetryError<E>>`, or hand it to another guard, which then sees
/// the last attempt's error as the flat [`Error<E>`](Error) it is (see
/// [`Retry::run`]).
///
/// ```
/// use staunch::fallback::Fallback;
/// use staunch::retry::{Backoff, Retry};
/// use staunch::testing::VirtualRuntime;
/// use std::time::Duration;
///
/// let rt = VirtualRuntime::new();
/// let retry = Retry::builder(rt.clone())
///     .max_attempts(2)
///     .backoff(Backoff::constant(Duration::from_millis(5)))
///     .build()?;
/// // Awaited: the whole story of the retry.
/// let err = rt.block_on(retry.run(|_| async { Err::<u32, _>("503") })).unwrap().unwrap_err();
/// assert_eq!(err.attempts(), 2);
/// // Under a fallback: its last error, which the fallback answers (it would
/// // pass a cancellation through untouched).
/// let out = rt.block_on(Fallback::value(0).call(retry.run(|_| async { Err::<u32, _>("503") })));
/// assert_eq!(out.unwrap().unwrap(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// Awaited: [`RetryError`], as [`Retry::run`] says. Under another guard:
/// the last attempt's [`Error`].
///
/// # Cancel safety
///
/// Lazy: nothing runs until it is awaited. Dropping it, or its
/// [`RetryFuture`], drops the running attempt or the sleep between
/// attempts; no further attempt starts.
#[must_use = "a retried call does nothing unless awaited; no attempt will run"]
pub struct RetryCall<'a, F, G: crate::Fallible>(RetryFuture<'a, F, G>);

impl<'a, F, G> IntoFuture for RetryCall<'a, F, G>
where
    F: FnMut(Attempt) -> G,
    G: crate::Fallible,
    G::Err: fmt::Debug + 'static,
{
    type Output = Result<G::Ok, RetryError<G::Err>>;
    type IntoFuture = RetryFuture<'a, F, G>;

    #[inline]
    fn into_future(self) -> RetryFuture<'a, F, G> {
        self.0
    }
}

impl<'a, F, G> crate::Fallible for RetryCall<'a, F, G>
where
    F: FnMut(Attempt) -> G,
    G: crate::Fallible,
    G::Err: fmt::Debug + 'static,
{
    type Ok = G::Ok;
    type Err = G::Err;
    type Future = RetryFuture<'a, F, G>;

    #[inline(always)]
    fn into_fallible(self) -> RetryFuture<'a, F, G> {
        self.0
    }

    #[inline(always)]
    fn lift(out: Result<G::Ok, RetryError<G::Err>>) -> Result<G::Ok, Error<G::Err>> {
        out.map_err(Error::from)
    }

    #[inline(always)]
    fn failure(out: &Result<G::Ok, RetryError<G::Err>>) -> Option<Failure<'_, G::Err>> {
        match out.as_ref().err()?.last() {
            Error::Inner(error) => Some(Failure::Inner(error)),
            other => Some(Failure::Staunch(other.kind())),
        }
    }
}

impl<F, G: crate::Fallible> fmt::Debug for RetryCall<'_, F, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RetryCall").field(&self.0).finish()
    }
}

impl<F, G: crate::Fallible> fmt::Debug for RetryFuture<'_, F, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryFuture")
            .field("attempt", &self.number)
            .field("sleeping", &self.sleep.is_some())
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`RetryCall`], output `Result<T, RetryError<E>>`.
    ///
    /// Written by hand rather than as an `async fn`: the loop's state is
    /// these fields, so it is built in place (an `async fn` copies its
    /// arguments once more on the first poll), and there is no "resumed
    /// after completion" panic.
    ///
    /// Phases: `attempt` set is an attempt running, with `sleep` its time
    /// limit once armed; `attempt` unset and `sleep` set is the backoff
    /// between attempts; both unset is the next attempt to start. `number`
    /// zero marks a finished call.
    #[must_use = "futures do nothing unless polled; no attempt will run"]
    pub struct RetryFuture<'a, F, G>
    where
        G: crate::Fallible,
    {
        retry: &'a Retry,
        op: F,
        // Read lazily: set once the first attempt has either gone pending
        // or failed, so a call that succeeds on the first poll of its first
        // attempt (the common case) never reads the clock. An attempt that
        // goes pending is timed from the end of its first poll, which on a
        // virtual clock is exact and on a real clock misses only that
        // poll's own synchronous work.
        start: Option<Instant>,
        // Started (and a run seed drawn) on the first failure.
        backoff: Option<Backoff>,
        earlier: Errors<G::Err>,
        previous: Option<ErrorKind>,
        number: u32,
        // The running attempt's limit.
        limit: Option<Duration>,
        #[pin]
        attempt: Option<Lifted<G>>,
        sleep: Option<BoxTask>,
    }
}

impl<F, G> Future for RetryFuture<'_, F, G>
where
    F: FnMut(Attempt) -> G,
    G: crate::Fallible,
    G::Err: fmt::Debug + 'static,
{
    type Output = Result<G::Ok, RetryError<G::Err>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let retry = *this.retry;
        let config = &*retry.config;
        let timer = &retry.config.timer;
        loop {
            if *this.number == 0 {
                // Finished: polled again, it starts nothing.
                return Poll::Pending;
            }
            let Some(attempt) = this.attempt.as_mut().as_pin_mut() else {
                if let Some(sleep) = this.sleep {
                    // The backoff between attempts.
                    ready!(sleep.as_mut().poll(cx));
                    *this.sleep = None;
                    *this.number += 1;
                }
                // A plain policy's limit is its timeout; the budget's clip
                // and the notes are among the steps (see `steps.rs`).
                let (elapsed, limit) = match config.steps {
                    None => (retry.elapsed(*this.start), config.attempt_timeout),
                    Some(steps) => (steps.started)(retry, *this.number, *this.start),
                };
                *this.limit = limit;
                let attempt = (this.op)(Attempt {
                    number: *this.number,
                    hedge: 1,
                    elapsed,
                    previous: *this.previous,
                });
                this.attempt.set(Some(crate::fallible::lifted(attempt)));
                continue;
            };
            // The attempt is polled first, its timer armed only once it is
            // pending, and the attempt dropped as soon as the time is up, as
            // `timeout` would.
            let outcome = match attempt.poll(cx) {
                Poll::Ready(outcome) => outcome,
                Poll::Pending => {
                    if this.start.is_none() {
                        *this.start = Some(timer.now());
                    }
                    let Some(limit) = *this.limit else {
                        return Poll::Pending;
                    };
                    let sleep = this.sleep.get_or_insert_with(|| timer.sleep(limit));
                    ready!(sleep.as_mut().poll(cx));
                    Err(Error::Timeout(Elapsed { after: limit }))
                }
            };
            this.attempt.set(None);
            *this.sleep = None;
            let error = match outcome {
                Ok(value) => {
                    *this.number = 0;
                    return Poll::Ready(Ok(value));
                }
                Err(error) => error,
            };
            let number = *this.number;
            let start = *this.start.get_or_insert_with(|| timer.now());
            let backoff = this.backoff.get_or_insert_with(|| retry.fresh_backoff());
            // Held undropped while the steps look at it behind a trait
            // object, whose vtable would otherwise carry the drop of every
            // kind of error (see `Errors`); a classifier that panics leaks
            // it.
            let error = ManuallyDrop::new(error);
            let kind = error.kind();
            let by_default = default_decision(&error, config.retry_circuit_open);
            let verdict = match config.steps {
                None => retry.delay_after(number, kind, by_default, backoff),
                // The steps also call the `on_retry` hook and tell the
                // observers. Only the operation's own error is formatted
                // for them (with its own `Debug`); staunch's kinds go by
                // name, so the formatting of durations and cancel reasons
                // is not linked into every program.
                Some(steps) => (steps.failed)(
                    retry,
                    &Failed {
                        number,
                        start,
                        kind,
                        by_default,
                        error: &error,
                    },
                    backoff,
                ),
            };
            let delay = match verdict {
                Ok(delay) => delay,
                Err(stop) => {
                    *this.number = 0;
                    return Poll::Ready(Err(RetryError {
                        attempts: number,
                        stop,
                        last: error,
                        earlier: this.earlier.take(),
                    }));
                }
            };
            *this.previous = Some(kind);
            let error = ManuallyDrop::into_inner(error);
            if config.keep_all_errors {
                keep(this.earlier.list_mut(), error);
            } else {
                crate::fallible::drop_error::<G>(error);
            }
            *this.sleep = Some(timer.sleep(delay));
        }
    }
}

/// `kept.push(item)`, growing by hand: a full vector is moved into a new one
/// twice as large, made with `Vec::with_capacity`. The push then never grows,
/// so `Vec`'s own growth (`grow_amortized`, and `realloc` with this type's
/// alignment, which keeps the allocator's aligned path linked in the browser
/// build) is not linked for the errors of programs that never keep them,
/// about 0.5 KB; growth is still amortised constant time.
fn keep<T>(kept: &mut Vec<T>, item: T) {
    if kept.len() == kept.capacity() {
        let full = std::mem::take(kept);
        let mut bigger = Vec::with_capacity(2 * full.len() + 2);
        bigger.extend(full);
        // What `take` left in `kept` is a `Vec::new()`, which owns nothing:
        // forgetting it frees nothing, and links no drop of the items.
        std::mem::forget(std::mem::replace(kept, bigger));
    }
    kept.push(item);
}

#[cfg(test)]
mod tests {
    use super::keep;
    use crate::retry::Retry;
    use crate::testing::VirtualRuntime;
    use std::cell::Cell;
    use std::future::{Future, IntoFuture};
    use std::task::{Context, Poll, Waker};

    #[test]
    fn a_finished_call_polled_again_starts_nothing() {
        let retry = Retry::new(VirtualRuntime::new());
        let calls = Cell::new(0);
        let run = retry.run(|_| {
            calls.set(calls.get() + 1);
            async { Ok::<_, ()>(7) }
        });
        let mut run = std::pin::pin!(run.into_future());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(run.as_mut().poll(&mut cx), Poll::Ready(Ok(7))));
        assert!(run.as_mut().poll(&mut cx).is_pending());
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn kept_items_stay_in_order_as_the_vector_grows() {
        let mut kept = Vec::new();
        for i in 0..100 {
            keep(&mut kept, i);
            assert!(kept.capacity() <= 2 * kept.len() + 2);
        }
        assert_eq!(kept, (0..100).collect::<Vec<_>>());
    }
}
