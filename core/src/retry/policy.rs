//! The `Retry` policy value and its builder.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::backoff::{Backoff, BackoffBuilder, DEFAULT_MAX_DELAY, Jitter};
use super::budget::Budget;
use super::extras::{self, Classify, Extras, Hooks};
use super::notify::{Notify, notify_observers};
use super::steps::{self, Steps};
use crate::observe::Observers;
use crate::runtime::{MaybeSend, MaybeSync, OwnedTimer, Timer};
use crate::typed::Typed;
use crate::{ConfigError, Error, ErrorKind};

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
    /// timeouts; stop on cancellation, an open circuit, a full bulkhead, a
    /// rate limiter's refusal and a panic (a classifier may answer an open
    /// circuit or a rate limit with `RetryAfter` its `retry_after`).
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

/// What the operation is told about the attempt it is making.
///
/// ```
/// use staunch::retry::Retry;
/// use staunch::testing::VirtualRuntime;
///
/// let rt = VirtualRuntime::new();
/// let retry = Retry::new(rt.clone());
/// let out = rt.block_on(retry.run(|attempt| async move {
///     if attempt.number() < 2 { Err("not yet") } else { Ok(attempt.number()) }
/// }));
/// assert_eq!(out.unwrap().unwrap(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub(crate) number: u32,
    /// Which copy of the attempt this is (1 unless hedged).
    pub(crate) hedge: u32,
    pub(crate) elapsed: Duration,
    pub(crate) previous: Option<ErrorKind>,
}

impl Attempt {
    /// The first attempt, for a stage that runs an operation once without
    /// a retry around it.
    pub(crate) fn first() -> Attempt {
        Attempt {
            number: 1,
            hedge: 1,
            elapsed: Duration::ZERO,
            previous: None,
        }
    }

    /// The attempt number, from 1.
    #[must_use]
    pub fn number(&self) -> u32 {
        self.number
    }
    /// Which copy of this attempt the call is: 1 for the original, 2 and
    /// up for the hedges a [`Hedge`](crate::hedge::Hedge) started beside it
    /// (always 1 without hedging).
    ///
    /// In [`Hedge::run`](crate::hedge::Hedge::run), and in a
    /// [`Policy`](crate::policy::Policy) that hedges but does not retry,
    /// each hedge is an attempt of its own and this equals
    /// [`number`](Self::number). In a policy that retries and hedges, the
    /// copies of one retry attempt share its `number`; this tells them apart
    /// (to send each copy to another replica, say).
    #[must_use]
    pub fn hedge(&self) -> u32 {
        self.hedge
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

pub(crate) struct Config {
    pub(crate) timer: OwnedTimer,
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) seed: u64,
    pub(crate) budget: Option<Budget>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) retry_circuit_open: bool,
    pub(crate) keep_all_errors: bool,
    /// The classifier, hook, observers and name, if any was set.
    pub(crate) extras: Option<Box<dyn Hooks>>,
    /// Asks the classifier in the extras; set with it (see `extras.rs`).
    pub(crate) classify: Option<Classify>,
    /// How many calls this policy (and its clones) has run: each later
    /// call derives its own seed from it.
    pub(crate) runs: AtomicU64,
    /// Calls `on_retry` and builds the events for `observers`; set together
    /// with either (see [`RetryBuilder::observers`] and `notify.rs`).
    pub(crate) notify: Option<Notify>,
    /// The loop's steps with a classifier, a budget, a hook or observers;
    /// set with any of them (see `steps.rs`).
    pub(crate) steps: Option<Steps>,
}

impl Config {
    /// The optional settings, if any was set.
    pub(crate) fn extras(&self) -> Option<&Extras> {
        self.extras.as_deref().map(Hooks::get)
    }
}

/// A retry policy: how many attempts, how long to wait between them, how
/// long in all, and which errors are worth retrying.
///
/// Build it once with [`Retry::builder`] and share it: it is a cheap
/// `Clone + Send + Sync` handle. Run an operation with
/// [`run`](Retry::run): each attempt is a future of `Result<T, E>` or
/// another staunch call, such as a breaker's (see
/// [`Fallible`](crate::Fallible)).
///
/// Defaults (also [`Retry::new`]): 3 attempts in all; exponential
/// backoff from 100 ms, factor 2, full jitter, at most 10 s per delay; no
/// total budget and no per-attempt timeout; retry the operation's errors and
/// timeouts, never cancellation, an open circuit, a full bulkhead, a rate
/// limiter's refusal or a panic.
///
/// Callers sharing one policy each get their own jitter: the first run uses
/// the seed as given, each later run derives its own seed from it.
#[derive(Clone)]
pub struct Retry {
    pub(crate) config: Arc<Config>,
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("Retry")
            .field("name", &c.extras().map_or("", |extras| &extras.name))
            .field("max_attempts", &c.max_attempts)
            .field("backoff", &c.backoff)
            .field("budget", &c.budget.as_ref().map(|b| b.total))
            .field("attempt_timeout", &c.attempt_timeout)
            .field("retry_circuit_open", &c.retry_circuit_open)
            .field("keep_all_errors", &c.keep_all_errors)
            .finish_non_exhaustive()
    }
}

impl Retry {
    /// A builder starting from the defaults (see [`Retry`]).
    /// A retry with the defaults listed on [`Retry`], sleeping on `timer`.
    ///
    /// ```
    /// use staunch::retry::Retry;
    ///
    /// let rt = staunch::testing::VirtualRuntime::new();
    /// let retry = Retry::new(rt.clone());
    /// assert_eq!(retry.max_attempts(), 3);
    /// ```
    #[must_use]
    pub fn new<T: Timer + 'static>(timer: T) -> Retry {
        RetryBuilder::new(OwnedTimer::new(timer))
            .build()
            .expect("the default retry settings are valid")
    }

    /// A builder sleeping on `timer`, starting from the defaults listed on
    /// [`Retry`].
    pub fn builder<T: Timer + 'static>(timer: T) -> RetryBuilder {
        RetryBuilder::new(OwnedTimer::new(timer))
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
/// # let rt = staunch::testing::VirtualRuntime::new();
/// let retry = Retry::builder(rt.clone())
///     .max_attempts(5)
///     .backoff(Backoff::exponential(Duration::from_millis(50)).jitter(Jitter::Equal))
///     .budget(Duration::from_secs(2))
///     .attempt_timeout(Duration::from_millis(500))
///     .retry_if(|e: &std::io::Error| e.kind() != std::io::ErrorKind::PermissionDenied)
///     .on_retry(|attempt, kind, delay| eprintln!("attempt {attempt} failed ({kind:?}); again in {delay:?}"))
///     .build()?;
/// assert_eq!(retry.max_attempts(), 5);
/// assert!(Retry::builder(rt).max_attempts(0).build().is_err());
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[must_use = "a RetryBuilder does nothing until `build()` is called"]
pub struct RetryBuilder {
    timer: OwnedTimer,
    max_attempts: u32,
    backoff: BackoffBuilder,
    seed: Option<u64>,
    budget: Option<Budget>,
    attempt_timeout: Option<Duration>,
    retry_circuit_open: bool,
    keep_all_errors: bool,
    extras: Option<Box<dyn Hooks>>,
    classify: Option<Classify>,
    notify: Option<Notify>,
    steps: Option<Steps>,
}

impl fmt::Debug for RetryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("budget", &self.budget.as_ref().map(|b| b.total))
            .field("attempt_timeout", &self.attempt_timeout)
            .finish_non_exhaustive()
    }
}

impl RetryBuilder {
    fn new(timer: OwnedTimer) -> RetryBuilder {
        RetryBuilder {
            timer,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::exponential(DEFAULT_INITIAL_DELAY)
                .max_delay(DEFAULT_MAX_DELAY)
                .jitter(Jitter::Full),
            seed: None,
            budget: None,
            attempt_timeout: None,
            retry_circuit_open: false,
            keep_all_errors: false,
            extras: None,
            classify: None,
            notify: None,
            steps: None,
        }
    }

    /// The most attempts in all, the first call included (default 3; at
    /// least 1, and 1 means no retries).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The delays between attempts (default: exponential from 100 ms, full
    /// jitter, at most 10 s): a [`BackoffBuilder`], or a built [`Backoff`],
    /// whose schedule each call starts from the beginning.
    pub fn backoff(mut self, backoff: impl Into<BackoffBuilder>) -> Self {
        self.backoff = backoff.into();
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
        self.budget = Some(Budget::new(budget));
        self.steps = Some(steps::ALL);
        self
    }

    /// Gives each attempt at most this long; an attempt that runs over
    /// fails with [`Error::Timeout`], which the default classifier retries
    /// (default: none).
    pub fn attempt_timeout(mut self, limit: Duration) -> Self {
        self.attempt_timeout = Some(limit);
        self
    }

    /// Decides per error whether to retry, retry after a given delay (a
    /// Retry-After hint), or stop, for operations whose error type is `E`;
    /// errors of other operations are classified by default (see
    /// [`Decision::by_default`]). Cancellation is never retried, whatever
    /// this returns. Name the type in the closure's argument:
    /// `.classify(|e: &staunch::Error<MyError>| ...)`. Replaces any earlier
    /// `classify` or `retry_if`.
    pub fn classify<E: 'static>(
        mut self,
        classify: impl Fn(&Error<E>) -> Decision + MaybeSend + MaybeSync + 'static,
    ) -> Self {
        extras::make(&mut self.extras).classifier =
            Some(Typed::new(move |error: &Error<E>| Some(classify(error))));
        self.classify = Some(extras::classify);
        self.steps = Some(steps::ALL);
        self
    }

    /// Retries only those of the operation's own errors of type `E` for
    /// which `retryable` holds; every other error (staunch's own kinds, and
    /// errors of other types) is classified by default. Name the type in the
    /// closure's argument: `.retry_if(|e: &std::io::Error| ...)`. Replaces
    /// any earlier `classify` or `retry_if`.
    pub fn retry_if<E: 'static>(
        mut self,
        retryable: impl Fn(&E) -> bool + MaybeSend + MaybeSync + 'static,
    ) -> Self {
        extras::make(&mut self.extras).classifier = Some(extras::retry_if(retryable));
        self.classify = Some(extras::classify);
        self.steps = Some(steps::ALL);
        self
    }

    /// Whether the default classifier retries an open circuit, after the
    /// breaker's `retry_after` (default: false, since hammering an open
    /// breaker only burns attempts).
    pub fn retry_circuit_open(mut self, retry: bool) -> Self {
        self.retry_circuit_open = retry;
        self
    }

    /// Called before each sleep with the failed attempt's number, the kind
    /// of its error and the delay chosen. Keep it fast; it runs inline. One
    /// `Retry` serves operations of any error type, so the hook sees the
    /// kind; for the error itself, classify with [`classify`](Self::classify)
    /// (typed) or read the `RetryScheduled` event through
    /// [`observers`](Self::observers).
    pub fn on_retry(
        mut self,
        hook: impl Fn(u32, ErrorKind, Duration) + MaybeSend + MaybeSync + 'static,
    ) -> Self {
        extras::make(&mut self.extras).on_retry = Some(Box::new(hook));
        // The hook is called from the notes' function, so programs without
        // a hook or observers do not link its call.
        self.notify = Some(notify_observers);
        self.steps = Some(steps::ALL);
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
        extras::make(&mut self.extras).name = name.into();
        self
    }

    /// Where attempt, retry and give-up events go (default: nowhere).
    pub fn observers(mut self, observers: Observers) -> Self {
        extras::make(&mut self.extras).observers = observers;
        // Events are only built for observers: taking the event builder
        // here, not in the retry loop, keeps that code out of programs that
        // never register one.
        self.notify = Some(notify_observers);
        self.steps = Some(steps::ALL);
        self
    }

    /// Checks the settings and builds the policy.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for zero attempts, a zero budget, a zero per-attempt
    /// timeout, or a backoff the [`BackoffBuilder`] rejects (factor below 1,
    /// initial delay above the maximum, ...).
    // On wasm32 the classifiers need not be `Send`; there is one thread there.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn build(self) -> Result<Retry, ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                "max_attempts",
                "must be at least 1 (the first call counts); use 1 to disable retries",
            ));
        }
        if self.budget.as_ref().is_some_and(|b| b.total.is_zero()) {
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
                timer: self.timer,
                max_attempts: self.max_attempts,
                backoff,
                seed,
                budget: self.budget,
                attempt_timeout: self.attempt_timeout,
                retry_circuit_open: self.retry_circuit_open,
                keep_all_errors: self.keep_all_errors,
                extras: self.extras,
                classify: self.classify,
                runs: AtomicU64::new(0),
                notify: self.notify,
                steps: self.steps,
            }),
        })
    }
}
