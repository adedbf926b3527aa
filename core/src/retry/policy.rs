//! The `Retry` policy value and its builder.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::backoff::{Backoff, BackoffBuilder, DEFAULT_MAX_DELAY, Jitter};
use super::notify::{Notify, notify_observers};
use crate::observe::Observers;
use crate::{ConfigError, Error};

/// The default number of attempts in all (the first call and two retries).
pub(crate) const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The default first delay of the default exponential backoff.
pub(crate) const DEFAULT_INITIAL_DELAY: Duration = Duration::from_millis(100);

/// What to do after a failed attempt; returned by a classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Retry after the backoff's next delay.
    Retry,
    /// Retry after this delay instead (a Retry-After hint), capped by the
    /// maximum delay and the time budget.
    RetryAfter(Duration),
    /// Give up and return the error.
    Stop,
}

impl Decision {
    /// The default classification: retry the operation's own errors and
    /// timeouts; stop on cancellation, an open circuit, a full bulkhead and a
    /// panic.
    ///
    /// ```
    /// use staunch::retry::Decision;
    /// use staunch::timeout::Elapsed;
    /// use std::time::Duration;
    ///
    /// let timed_out: staunch::Error<()> = Elapsed { after: Duration::from_secs(1) }.into();
    /// assert_eq!(Decision::by_default(&timed_out), Decision::Retry);
    /// assert_eq!(Decision::by_default(&staunch::Error::Inner("503")), Decision::Retry);
    /// ```
    #[must_use]
    pub fn by_default<E>(error: &Error<E>) -> Decision {
        default_decision(error, false)
    }
}

pub(crate) fn default_decision<E>(error: &Error<E>, retry_circuit_open: bool) -> Decision {
    match error {
        Error::Inner(_) | Error::Timeout(_) => Decision::Retry,
        Error::CircuitOpen(open) if retry_circuit_open => Decision::RetryAfter(open.retry_after),
        Error::Cancelled(_)
        | Error::CircuitOpen(_)
        | Error::Rejected(_)
        | Error::Panicked(_)
        | Error::RateLimited(_) => Decision::Stop,
    }
}

/// The kind of an [`Error`], without its payload: what an [`Attempt`] knows
/// about the attempt before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operation's own error.
    Inner,
    /// A timeout fired.
    Timeout,
    /// The call was cancelled.
    Cancelled,
    /// An open circuit refused the call.
    CircuitOpen,
    /// A full bulkhead refused the call.
    Rejected,
    /// The operation panicked.
    Panicked,
    /// A rate limiter refused the call.
    RateLimited,
}

impl ErrorKind {
    /// The kind of `error`.
    #[must_use]
    pub fn of<E>(error: &Error<E>) -> ErrorKind {
        match error {
            Error::Inner(_) => ErrorKind::Inner,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Cancelled(_) => ErrorKind::Cancelled,
            Error::CircuitOpen(_) => ErrorKind::CircuitOpen,
            Error::Rejected(_) => ErrorKind::Rejected,
            Error::Panicked(_) => ErrorKind::Panicked,
            Error::RateLimited(_) => ErrorKind::RateLimited,
        }
    }
}

/// What the operation is told about the attempt it is making.
///
/// ```
/// use staunch::retry::Retry;
/// use staunch::testing::VirtualRuntime;
///
/// let rt = VirtualRuntime::new();
/// let retry = Retry::default();
/// let out = rt.block_on(retry.run(&rt, |attempt| async move {
///     if attempt.number() < 2 { Err("not yet") } else { Ok(attempt.number()) }
/// }));
/// assert_eq!(out.unwrap().unwrap(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub(crate) number: u32,
    pub(crate) elapsed: Duration,
    pub(crate) previous: Option<ErrorKind>,
}

impl Attempt {
    /// The attempt number, from 1.
    #[must_use]
    pub fn number(&self) -> u32 {
        self.number
    }
    /// Whether this is the first call (not a retry).
    #[must_use]
    pub fn is_first(&self) -> bool {
        self.number == 1
    }
    /// Time since the first attempt started (zero for the first).
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
    /// The kind of the previous attempt's error (`None` for the first).
    #[must_use]
    pub fn previous_error(&self) -> Option<ErrorKind> {
        self.previous
    }
}

pub(crate) type Classify<E> = dyn Fn(&Error<E>) -> Decision + Send + Sync;
pub(crate) type OnRetry<E> = dyn Fn(u32, &Error<E>, Duration) + Send + Sync;

pub(crate) enum Classifier<E> {
    Default,
    RetryIf(Box<dyn Fn(&E) -> bool + Send + Sync>),
    Custom(Box<Classify<E>>),
}

pub(crate) struct Config<E> {
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) seed: u64,
    pub(crate) budget: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) classifier: Classifier<E>,
    pub(crate) retry_circuit_open: bool,
    pub(crate) on_retry: Option<Box<OnRetry<E>>>,
    pub(crate) keep_all_errors: bool,
    pub(crate) name: Arc<str>,
    pub(crate) observers: Observers,
    /// Builds the events for `observers`; set together with them (see
    /// [`RetryBuilder::observers`] and `notify.rs`).
    pub(crate) notify: Option<Notify<E>>,
}

impl<E> Config<E> {
    /// The classifier's decision, with the hard rule on top: cancellation
    /// is never retried, whatever a custom classifier says.
    pub(crate) fn decide(&self, error: &Error<E>) -> Decision {
        if error.is_cancelled() {
            return Decision::Stop;
        }
        match &self.classifier {
            Classifier::Default => default_decision(error, self.retry_circuit_open),
            Classifier::RetryIf(retryable) => match error {
                Error::Inner(e) if !retryable(e) => Decision::Stop,
                other => default_decision(other, self.retry_circuit_open),
            },
            Classifier::Custom(classify) => classify(error),
        }
    }
}

/// A retry policy: how many attempts, how long to wait between them, how
/// long in all, and which errors are worth retrying.
///
/// Build it once with [`Retry::builder`] and share it: it is a cheap
/// `Clone + Send + Sync` handle. Run an operation with
/// [`run`](Retry::run) (the operation returns its own error `E`) or
/// [`run_layered`](Retry::run_layered) (the operation is itself a staunch
/// stage returning [`staunch::Error<E>`](Error)).
///
/// Defaults (also [`Retry::default`]): 3 attempts in all; exponential
/// backoff from 100 ms, factor 2, full jitter, at most 10 s per delay; no
/// total budget and no per-attempt timeout; retry the operation's errors and
/// timeouts, never cancellation, an open circuit, a full bulkhead or a panic.
///
/// Callers sharing one policy each get their own jitter: the first run uses
/// the seed as given, each later run derives its own seed from it.
pub struct Retry<E> {
    pub(crate) config: Arc<Config<E>>,
    pub(crate) runs: Arc<AtomicU64>,
}

impl<E> Clone for Retry<E> {
    fn clone(&self) -> Self {
        Retry {
            config: self.config.clone(),
            runs: self.runs.clone(),
        }
    }
}

impl<E> fmt::Debug for Retry<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("Retry")
            .field("name", &c.name)
            .field("max_attempts", &c.max_attempts)
            .field("backoff", &c.backoff)
            .field("budget", &c.budget)
            .field("attempt_timeout", &c.attempt_timeout)
            .field("retry_circuit_open", &c.retry_circuit_open)
            .field("keep_all_errors", &c.keep_all_errors)
            .finish_non_exhaustive()
    }
}

impl<E> Default for Retry<E> {
    /// The policy with every default (see [`Retry`]).
    fn default() -> Self {
        RetryBuilder::new()
            .build()
            .expect("the default retry settings are valid")
    }
}

impl<E> Retry<E> {
    /// A builder starting from the defaults (see [`Retry`]).
    pub fn builder() -> RetryBuilder<E> {
        RetryBuilder::new()
    }

    /// The most attempts a call makes, the first one included.
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.config.max_attempts
    }
}

/// Configures a [`Retry`]; every setting is checked by [`build`](RetryBuilder::build).
///
/// ```
/// use staunch::retry::{Backoff, Decision, Jitter, Retry};
/// use std::time::Duration;
///
/// let retry = Retry::<std::io::Error>::builder()
///     .max_attempts(5)
///     .backoff(Backoff::exponential(Duration::from_millis(50)).jitter(Jitter::Equal))
///     .budget(Duration::from_secs(2))
///     .attempt_timeout(Duration::from_millis(500))
///     .retry_if(|e| e.kind() != std::io::ErrorKind::PermissionDenied)
///     .on_retry(|attempt, error, delay| eprintln!("attempt {attempt} failed ({error}); again in {delay:?}"))
///     .build()?;
/// assert_eq!(retry.max_attempts(), 5);
/// assert!(Retry::<()>::builder().max_attempts(0).build().is_err());
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[must_use = "a RetryBuilder does nothing until `build()` is called"]
pub struct RetryBuilder<E> {
    max_attempts: u32,
    backoff: BackoffBuilder,
    seed: Option<u64>,
    budget: Option<Duration>,
    attempt_timeout: Option<Duration>,
    classifier: Classifier<E>,
    retry_circuit_open: bool,
    on_retry: Option<Box<OnRetry<E>>>,
    keep_all_errors: bool,
    name: Arc<str>,
    observers: Observers,
    notify: Option<Notify<E>>,
}

impl<E> fmt::Debug for RetryBuilder<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("budget", &self.budget)
            .field("attempt_timeout", &self.attempt_timeout)
            .finish_non_exhaustive()
    }
}

impl<E> RetryBuilder<E> {
    fn new() -> RetryBuilder<E> {
        RetryBuilder {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::exponential(DEFAULT_INITIAL_DELAY)
                .max_delay(DEFAULT_MAX_DELAY)
                .jitter(Jitter::Full),
            seed: None,
            budget: None,
            attempt_timeout: None,
            classifier: Classifier::Default,
            retry_circuit_open: false,
            on_retry: None,
            keep_all_errors: false,
            name: Arc::from(""),
            observers: Observers::new(),
            notify: None,
        }
    }

    /// The most attempts in all, the first call included (default 3; at
    /// least 1, and 1 means no retries).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The delays between attempts (default: exponential from 100 ms, full
    /// jitter, at most 10 s).
    pub fn backoff(mut self, backoff: BackoffBuilder) -> Self {
        self.backoff = backoff;
        self
    }

    /// Seeds the jitter (default: the backoff's seed, else a fresh one).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The total time a call may spend (default: none).
    ///
    /// The budget is a hard limit on when attempts start: if the next delay
    /// would make an attempt start at or after the budget's end, the call
    /// stops at once with [`StopReason::Budget`](super::StopReason::Budget)
    /// and the last error, instead of sleeping only to start an attempt with
    /// no time left to succeed. A per-attempt timeout is clipped to the time
    /// left in the budget, so with [`attempt_timeout`](Self::attempt_timeout)
    /// set a call never runs past its budget; without it, a call overshoots
    /// by at most its last attempt's own time.
    ///
    /// Peers differ here: backon's total-delay limit counts only the time
    /// spent sleeping, not the attempts' own time; Polly's retry has no
    /// total budget and leaves it to an outer timeout, which cancels the
    /// attempt in flight. staunch stops before sleeping when the sleep could not
    /// lead to a useful attempt, so the last error is a real failure, not a
    /// timeout of an attempt that never had a chance.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Gives each attempt at most this long; an attempt that runs over
    /// fails with [`Error::Timeout`], which the default classifier retries
    /// (default: none).
    pub fn attempt_timeout(mut self, limit: Duration) -> Self {
        self.attempt_timeout = Some(limit);
        self
    }

    /// Decides per error whether to retry, retry after a given delay, or
    /// stop; replaces the default classifier (see [`Decision::by_default`]).
    /// Cancellation is never retried, whatever this returns.
    pub fn classify(
        mut self,
        classify: impl Fn(&Error<E>) -> Decision + Send + Sync + 'static,
    ) -> Self {
        self.classifier = Classifier::Custom(Box::new(classify));
        self
    }

    /// Retries only those of the operation's own errors for which
    /// `retryable` holds; every other kind is classified by default.
    pub fn retry_if(mut self, retryable: impl Fn(&E) -> bool + Send + Sync + 'static) -> Self {
        self.classifier = Classifier::RetryIf(Box::new(retryable));
        self
    }

    /// Whether the default classifier retries an open circuit, after the
    /// breaker's `retry_after` (default: false, since hammering an open
    /// breaker only burns attempts).
    pub fn retry_circuit_open(mut self, retry: bool) -> Self {
        self.retry_circuit_open = retry;
        self
    }

    /// Called before each sleep with the failed attempt's number, its error
    /// and the delay chosen. Keep it fast; it runs inline.
    pub fn on_retry(
        mut self,
        hook: impl Fn(u32, &Error<E>, Duration) + Send + Sync + 'static,
    ) -> Self {
        self.on_retry = Some(Box::new(hook));
        self
    }

    /// Keep every attempt's error in the [`RetryError`](super::RetryError),
    /// not only the last (default: false).
    pub fn keep_all_errors(mut self, keep: bool) -> Self {
        self.keep_all_errors = keep;
        self
    }

    /// The operation's name, carried by events (default: empty).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Where attempt, retry and give-up events go (default: nowhere).
    pub fn observers(mut self, observers: Observers) -> Self
    where
        E: fmt::Debug,
    {
        self.observers = observers;
        // Events (and the `Debug` text of errors) are only built for
        // observers: taking the event builder here, not in the retry loop,
        // keeps that code out of programs that never register one.
        self.notify = Some(notify_observers::<E>);
        self
    }

    /// Checks the settings and builds the policy.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for zero attempts, a zero budget, a zero per-attempt
    /// timeout, or a backoff the [`BackoffBuilder`] rejects (factor below 1,
    /// initial delay above the maximum, ...).
    pub fn build(self) -> Result<Retry<E>, ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                "max_attempts",
                "must be at least 1 (the first call counts); use 1 to disable retries",
            ));
        }
        if self.budget.is_some_and(|b| b.is_zero()) {
            return Err(ConfigError::new(
                "budget",
                "must be above zero; use `max_attempts(1)` to disable retries",
            ));
        }
        if self.attempt_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::new(
                "attempt_timeout",
                "must be above zero, or every attempt would time out at once",
            ));
        }
        let backoff = self.backoff.build()?;
        let seed = self.seed.unwrap_or_else(|| backoff.seed());
        Ok(Retry {
            config: Arc::new(Config {
                max_attempts: self.max_attempts,
                backoff,
                seed,
                budget: self.budget,
                attempt_timeout: self.attempt_timeout,
                classifier: self.classifier,
                retry_circuit_open: self.retry_circuit_open,
                on_retry: self.on_retry,
                keep_all_errors: self.keep_all_errors,
                name: self.name,
                observers: self.observers,
                notify: self.notify,
            }),
            runs: Arc::new(AtomicU64::new(0)),
        })
    }
}
