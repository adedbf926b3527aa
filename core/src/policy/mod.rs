//! One pipeline composing timeout, retry, rate limit, circuit breaker,
//! hedging, adaptive concurrency limit and bulkhead in a fixed, documented
//! order, speaking one [`staunch::Error<E>`](Error).
//!
//! A `Policy` carries no success or error type, so one policy per
//! downstream service guards every endpoint of it. A fallback depends on
//! what the call returns, so it stays outside: wrap the policy's run in
//! [`Fallback::call`](crate::fallback::Fallback::call).
//!
//! # Order (outermost first)
//!
//! ```text
//! (your fallback) -> retry -> rate limit -> circuit breaker -> hedge
//!                 -> concurrency limit -> timeout -> bulkhead -> operation
//! ```
//!
//! - **fallback**, if you add one, goes outermost, around the policy's
//!   run: it then answers whatever is left after every retry (an exhausted
//!   retry, an open circuit, a rejection), never cancellation.
//! - **retry** around the breaker: each attempt asks the breaker, so a
//!   retry never hammers an open circuit. With
//!   [`retry_circuit_open(true)`](crate::retry::RetryBuilder::retry_circuit_open)
//!   the retry waits exactly the open circuit's `retry_after` (within its
//!   budget) and tries again; without it, an open circuit ends the retry.
//! - **rate limit** inside the retry: every attempt, retries included,
//!   spends from the rate, since every attempt reaches the upstream. It
//!   waits up to the limiter's
//!   [`max_wait`](crate::rate::RateLimiterBuilder::max_wait) and otherwise
//!   answers [`Error::RateLimited`] with its `retry_after`, which a retry
//!   classifier can answer with `Decision::RetryAfter(retry_after)`. It sits
//!   outside the breaker, so the breaker never sees a rate-limit refusal
//!   and never counts one.
//! - **breaker** around the hedge: a hedged call is one call to the
//!   breaker, so hedges never inflate its counts; a timeout below it counts
//!   as a failure; a bulkhead rejection and cancellation never count.
//! - **hedge** around the timeout: every hedged attempt gets its own timeout.
//! - **concurrency limit** around the timeout: it must see a timeout as a
//!   finished call that signals overload (a drop); inside the timeout it
//!   would only see its call cancelled, which teaches it nothing. Each
//!   hedge holds its own slot. Time waiting in its queue is bounded by its
//!   own queue timeout, not the attempt's.
//! - **timeout** around the bulkhead: time spent waiting in the bulkhead's
//!   queue counts against the attempt's time limit.
//! - **bulkhead** innermost: a slot is held only while the operation runs.
//!
//! Every stage is optional. The operation is a closure called once per
//! attempt (and per hedge) with the [`Attempt`] it is making: its
//! [`number`](Attempt::number) counts the retry's attempts (or, in a policy
//! that hedges without retrying, the hedges, as [`Hedge::run`] counts
//! them), and [`hedge`](Attempt::hedge) says which copy of a retry attempt
//! a hedge is.
//!
//! ```
//! use staunch::breaker::CircuitBreaker;
//! use staunch::fallback::Fallback;
//! use staunch::policy::Policy;
//! use staunch::retry::{Backoff, Retry};
//! use staunch::testing::VirtualRuntime;
//! use std::time::Duration;
//!
//! let rt = VirtualRuntime::new();
//! let policy = Policy::builder(rt.clone())
//!     .timeout(Duration::from_millis(200))
//!     .retry(Retry::builder(rt.clone()).max_attempts(3).backoff(Backoff::constant(Duration::from_millis(10))).build()?)
//!     .breaker(CircuitBreaker::builder(rt.clone()).consecutive_failures(5).build()?)
//!     .build()?;
//! let calls = std::sync::atomic::AtomicU32::new(0);
//! let fetch = policy.run(|_| async {
//!     calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
//!     Err::<&str, _>("503")
//! });
//! let out = rt.block_on(Fallback::value("stale").call(fetch));
//! assert_eq!(out.unwrap().unwrap(), "stale"); // 3 attempts, then the fallback
//! assert_eq!(calls.into_inner(), 3);
//! # Ok::<(), staunch::ConfigError>(())
//! ```
//!
//! The same policy guards calls of other types:
//!
//! ```
//! # use staunch::policy::Policy;
//! # let rt = staunch::testing::VirtualRuntime::new();
//! let policy = Policy::builder(rt.clone()).build()?;
//! let n = rt.block_on(policy.run(|_| async { Ok::<u32, std::io::Error>(7) })).unwrap();
//! let s = rt.block_on(policy.run(|_| async { Ok::<&str, String>("seven") })).unwrap();
//! assert_eq!((n.unwrap(), s.unwrap()), (7, "seven"));
//! # Ok::<(), staunch::ConfigError>(())
//! ```

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::adaptive::ConcurrencyLimit;
use crate::breaker::CircuitBreaker;
use crate::bulkhead::Bulkhead;
use crate::fallible::{Fallible, Guarded};
use crate::hedge::Hedge;
use crate::rate::RateLimiter;
use crate::retry::{Attempt, Retry, RetryError};
use crate::runtime::{AnyTimer, Timer};
use crate::timeout::timeout;
use crate::{ConfigError, Error};

/// A composed resilience pipeline for operations of any success and error
/// type; see the [module docs](self) for the order of its stages.
///
/// A cheap `Clone + Send + Sync` value: share one per downstream service.
///
/// # Cancel safety
///
/// Dropping a call's future drops the running attempt (and any hedges),
/// frees its bulkhead slot, and counts as nothing in the breaker.
pub struct Policy {
    timer: AnyTimer,
    timeout: Option<Duration>,
    retry: Option<Retry>,
    breaker: Option<CircuitBreaker>,
    bulkhead: Option<Bulkhead>,
    hedge: Option<Hedge>,
    rate: Option<RateLimiter>,
    concurrency: Option<ConcurrencyLimit>,
}

impl Clone for Policy {
    fn clone(&self) -> Self {
        Policy {
            timer: self.timer.clone(),
            timeout: self.timeout,
            retry: self.retry.clone(),
            breaker: self.breaker.clone(),
            bulkhead: self.bulkhead.clone(),
            hedge: self.hedge.clone(),
            rate: self.rate.clone(),
            concurrency: self.concurrency.clone(),
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("bulkhead", &self.bulkhead)
            .field("hedge", &self.hedge)
            .field("rate", &self.rate)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl Policy {
    /// A builder with no stages; `timer` drives timeouts, retry delays and hedges.
    pub fn builder<R: Timer + 'static>(timer: R) -> PolicyBuilder {
        PolicyBuilder {
            policy: Policy {
                timer: AnyTimer::new(timer),
                timeout: None,
                retry: None,
                breaker: None,
                bulkhead: None,
                hedge: None,
                rate: None,
                concurrency: None,
            },
        }
    }

    /// Runs `op` through every stage, once per attempt (and per hedge),
    /// telling it which [`Attempt`] it is making. `op` returns a future of
    /// `Result<T, E>` or another staunch call (see [`Fallible`]; a scope's
    /// `call`, for example, so that its cancellation reaches the pipeline
    /// as cancellation).
    ///
    /// # Errors
    ///
    /// The [`Error<E>`](Error) left after every stage: the operation's own
    /// error (the last attempt's), [`Error::Timeout`], [`Error::CircuitOpen`],
    /// [`Error::Rejected`], [`Error::RateLimited`], or [`Error::Cancelled`] (which no stage ever
    /// retries, counts or replaces).
    ///
    /// # Cancel safety
    ///
    /// See [`Policy`].
    pub fn run<G, F>(&self, op: F) -> Guarded<impl Future<Output = Result<G::Ok, Error<G::Err>>>>
    where
        F: Fn(Attempt) -> G,
        G: Fallible,
        G::Err: fmt::Debug + 'static,
    {
        Guarded::new(self.all_attempts(move |attempt| crate::fallible::lifted(op(attempt))))
    }

    /// retry -> attempt
    async fn all_attempts<T, E, F, Fut>(&self, op: F) -> Result<T, Error<E>>
    where
        F: Fn(Attempt) -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
        E: fmt::Debug + 'static,
    {
        let op = &op;
        match &self.retry {
            Some(retry) => retry
                .run(|attempt| Guarded::new(self.attempt(op, attempt)))
                .await
                .map_err(RetryError::into_last),
            None => self.attempt(op, Attempt::first()).await,
        }
    }

    /// rate limit -> breaker -> hedge -> (concurrency limit -> timeout -> bulkhead -> op)
    async fn attempt<T, E, F, Fut>(&self, op: &F, attempt: Attempt) -> Result<T, Error<E>>
    where
        F: Fn(Attempt) -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
        E: 'static,
    {
        if let Some(rate) = &self.rate {
            rate.until_ready().await?;
        }
        let hedged = async {
            match &self.hedge {
                Some(hedge) => {
                    let retried = self.retry.is_some();
                    hedge
                        .run(|copy| Guarded::new(self.guarded(op, hedged(attempt, copy, retried))))
                        .await
                }
                None => self.guarded(op, attempt).await,
            }
        };
        match &self.breaker {
            Some(breaker) => breaker.call(Guarded::new(hedged)).await,
            None => hedged.await,
        }
    }

    /// concurrency limit -> timeout -> bulkhead -> op
    async fn guarded<T, E, F, Fut>(&self, op: &F, attempt: Attempt) -> Result<T, Error<E>>
    where
        F: Fn(Attempt) -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        match &self.concurrency {
            Some(limit) => limit.call(Guarded::new(self.timed(op, attempt))).await,
            None => self.timed(op, attempt).await,
        }
    }

    /// timeout -> bulkhead -> op
    async fn timed<T, E, F, Fut>(&self, op: &F, attempt: Attempt) -> Result<T, Error<E>>
    where
        F: Fn(Attempt) -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        let limited = async {
            match &self.bulkhead {
                Some(bulkhead) => bulkhead.call(Guarded::new(op(attempt))).await,
                None => op(attempt).await,
            }
        };
        match self.timeout {
            Some(limit) => timeout(&self.timer, limit, limited)
                .await
                .unwrap_or_else(|elapsed| Err(Error::Timeout(elapsed))),
            None => limited.await,
        }
    }
}

/// What a hedged copy of the policy's `attempt` is told. Without a retry
/// stage the hedges are the attempts, numbered as [`Hedge::run`] numbers
/// them; with one, every copy keeps the retry attempt's number and says
/// which copy it is in [`Attempt::hedge`], its time counts from the call's
/// first attempt, and its previous error is the last failed copy's (or,
/// for the first copy, the last retry attempt's).
fn hedged(attempt: Attempt, copy: Attempt, retried: bool) -> Attempt {
    if !retried {
        return copy;
    }
    Attempt {
        number: attempt.number,
        hedge: copy.hedge,
        elapsed: attempt.elapsed.saturating_add(copy.elapsed),
        previous: copy.previous.or(attempt.previous),
    }
}

/// Configures a [`Policy`]; add the stages you want in any order (they
/// always run in the documented order).
#[must_use = "a builder does nothing until you call `build()`"]
pub struct PolicyBuilder {
    policy: Policy,
}

impl fmt::Debug for PolicyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyBuilder")
            .field("policy", &self.policy)
            .finish()
    }
}

impl PolicyBuilder {
    /// Limit each attempt (each hedge, each retry) to `limit`.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.policy.timeout = Some(limit);
        self
    }

    /// Retry failed attempts with this policy.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.policy.retry = Some(retry);
        self
    }

    /// Guard attempts with this breaker (shared with its other users).
    pub fn breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.policy.breaker = Some(breaker);
        self
    }

    /// Bound concurrency with this bulkhead (shared with its other users).
    pub fn bulkhead(mut self, bulkhead: Bulkhead) -> Self {
        self.policy.bulkhead = Some(bulkhead);
        self
    }

    /// Spend one unit of this rate limiter per attempt (shared with its
    /// other users); see the [module docs](self) for where it sits.
    pub fn rate_limit(mut self, limiter: RateLimiter) -> Self {
        self.policy.rate = Some(limiter);
        self
    }

    /// Bound concurrency with this adaptive limit (shared with its other
    /// users); it learns from each attempt's latency and timeouts.
    pub fn concurrency_limit(mut self, limit: ConcurrencyLimit) -> Self {
        self.policy.concurrency = Some(limit);
        self
    }

    /// Hedge slow attempts.
    pub fn hedge(mut self, hedge: Hedge) -> Self {
        self.policy.hedge = Some(hedge);
        self
    }

    /// Checks the settings and builds the pipeline.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for a zero timeout (every attempt would fail).
    pub fn build(self) -> Result<Policy, ConfigError> {
        if self.policy.timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::new(
                "timeout",
                "must be above zero, or every attempt times out at once",
            ));
        }
        Ok(self.policy)
    }
}
