//! Circuit breaker: stop calling a service that keeps failing, and let a few
//! probes find out when it is back.
//!
//! A [`CircuitBreaker`] is one value shared by every caller (`Clone + Send +
//! Sync` natively; clones share state). It is
//!
//! - **closed**: calls run and their outcomes are recorded in a sliding
//!   window (the last N calls, or the calls of the last T in buckets). It
//!   trips when, with at least a minimum number of calls in the window, the
//!   failure rate or the slow-call rate reaches its threshold, or after N
//!   failures in a row.
//! - **open**: calls are refused at once with [`CircuitOpen`], which says
//!   how long is left (`retry_after`). The open duration is constant or
//!   grows with a [`Backoff`](crate::retry::Backoff) on repeated trips.
//! - **half-open**: exactly the configured number of probes are admitted,
//!   even under races. Enough successes close it; too many failures reopen
//!   it; a probe that never reports (its future or permit was dropped) frees
//!   its slot; and a probe still in flight a probe timeout after the last
//!   probe was admitted reopens it, so it can never be stuck half-open. A
//!   quiet service is not reopened for being quiet: while no probe is in
//!   flight, half-open waits for its next call, however long that takes,
//!   and admits it as a probe.
//!
//! Time-driven transitions are evaluated lazily against the timer given to
//! the builder, when the breaker is next used or inspected: no background
//! task, so it works on every runtime and in the browser.
//!
//! Cancellation is never counted: a call whose future is dropped, or that
//! ends in [`Error::Cancelled`](crate::Error::Cancelled), counts as neither success nor failure.
//!
//! The state lives in memory by default. [`CircuitBreaker::with_store`]
//! keeps it in a [`BreakerStore`] instead (staunch-redis shares one breaker
//! between processes that way); the breaker's rules, its call future and
//! every method work the same on it.
//!
//! ```
//! use staunch::breaker::{CircuitBreaker, CircuitState};
//! use staunch::testing::VirtualRuntime;
//! use std::time::Duration;
//!
//! let rt = VirtualRuntime::new();
//! let breaker = CircuitBreaker::builder(rt.clone())
//!     .consecutive_failures(3)
//!     .open_duration(Duration::from_secs(10))
//!     .build()?;
//! rt.block_on(async {
//!     for _ in 0..3 {
//!         let _ = breaker.call(async { Err::<(), _>("down") }).await;
//!     }
//!     assert_eq!(breaker.state(), CircuitState::Open);
//!     let refused = breaker.call(async { Ok::<_, &str>(()) }).await.unwrap_err();
//!     assert!(refused.is_circuit_open());
//! })
//! .unwrap();
//! # Ok::<(), staunch::ConfigError>(())
//! ```
//!
//! One breaker guards every call to its service, whatever each returns;
//! which errors count can be said per error type:
//!
//! ```
//! use staunch::breaker::CircuitBreaker;
//! use std::io;
//!
//! # let rt = staunch::testing::VirtualRuntime::new();
//! let inventory = CircuitBreaker::builder(rt.clone())
//!     .failure_if(|e: &io::Error| e.kind() != io::ErrorKind::NotFound)
//!     .build()?;
//! rt.block_on(async {
//!     let count: u32 = inventory.call(async { Ok::<_, io::Error>(3) }).await?;
//!     let name: String = inventory.call(async { Ok::<_, io::Error>("bolt".to_string()) }).await?;
//!     let missing = inventory.call(async { Err::<(), _>(io::Error::from(io::ErrorKind::NotFound)) }).await;
//!     let parsed = inventory.call(async { "7".parse::<u8>() }).await; // another error type
//!     assert!(missing.is_err() && parsed.is_ok());
//!     assert_eq!((count, name.as_str()), (3, "bolt"));
//!     Ok::<_, staunch::Error<io::Error>>(())
//! })
//! .unwrap()?;
//! assert_eq!(inventory.metrics().failures, 0); // NotFound is not a failure
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod call;
mod config;
mod error;
mod fast_path;
mod machine;
mod reason;
mod store;
mod ticket;
mod window;

#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use crate::observe::CircuitState;
pub use call::Call;
pub use config::CircuitBreakerBuilder;
pub use error::CircuitOpen;
pub use store::{Admission, BreakerStore, MAX_GENERATION, PendingAdmission, Permit};
pub use ticket::Outcome;

use crate::ErrorKind;
use crate::fallible::{Failure, Fallible, Guarded};
use crate::runtime::Timer;
use crate::typed::Typed;
use store::Store;
use ticket::Ticket;

/// What errors that the breaker's `failure_if` predicate rejects count as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum NotFailure {
    /// They count as successes (the service answered; the answer was an
    /// error of the caller's own making, such as "not found").
    #[default]
    CountAsSuccess,
    /// They are not counted at all.
    Ignore,
}

/// A snapshot of a breaker's state and of the numbers it judges by, from
/// [`CircuitBreaker::metrics`].
///
/// What the counts describe depends on the state, so that a tripped
/// breaker still tells what tripped it:
///
/// | state | `calls`, `failures`, `slow_calls`, `consecutive_failures` |
/// | --- | --- |
/// | closed, forced closed | the live window |
/// | open, forced open | the window (or the half-open probes) as they were when it opened, frozen |
/// | half-open | the probes reported so far in this half-open period |
///
/// ```
/// # use staunch::breaker::{CircuitBreaker, CircuitState};
/// # let rt = staunch::testing::VirtualRuntime::new();
/// let breaker = CircuitBreaker::builder(rt).count_window(4).minimum_calls(4).build()?;
/// for ok in [true, false, false, true] {
///     let permit = breaker.try_acquire()?;
///     if ok { permit.success() } else { permit.failure() }
/// }
/// let m = breaker.metrics();
/// assert_eq!(m.state, CircuitState::Open);
/// assert_eq!((m.calls, m.failures, m.failure_rate), (4, 2, 0.5)); // what tripped it
/// assert!(breaker.try_acquire().is_err());
/// assert_eq!(breaker.metrics().refused_calls, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// The state now.
    pub state: CircuitState,
    /// Calls counted (see the table above for which).
    pub calls: u64,
    /// Failed calls among them.
    pub failures: u64,
    /// Slow calls among them.
    pub slow_calls: u64,
    /// `failures / calls`, or 0 when no call is counted.
    pub failure_rate: f64,
    /// `slow_calls / calls`, or 0 when no call is counted.
    pub slow_call_rate: f64,
    /// Failures in a row, ending with the last recorded call (frozen while
    /// open, 0 in half-open).
    pub consecutive_failures: u64,
    /// Calls refused since the breaker was built: while open, forced open,
    /// or half-open with every probe slot taken. Never reset, so it can feed
    /// a monotonic counter.
    pub refused_calls: u64,
    /// While open, how long until a probe is admitted ([`Duration::MAX`] when forced open).
    pub retry_after: Option<Duration>,
}

impl Metrics {
    /// A snapshot in `state` with nothing counted, for a
    /// [`BreakerStore`] to fill in with what it knows.
    #[must_use]
    pub fn new(state: CircuitState) -> Metrics {
        Metrics {
            state,
            calls: 0,
            failures: 0,
            slow_calls: 0,
            failure_rate: 0.0,
            slow_call_rate: 0.0,
            consecutive_failures: 0,
            refused_calls: 0,
            retry_after: None,
        }
    }
}

/// A circuit breaker shared by every caller of one service; see the
/// [module docs](self) for the state machine.
///
/// It carries no error or success type: one breaker per service guards
/// every call to it, whatever each call returns. Which errors count as
/// failures is set per error type with
/// [`failure_if`](CircuitBreakerBuilder::failure_if); errors of any other
/// type count as failures.
///
/// # Cancel safety
///
/// Dropping a call's future (or an [`AdmittedCall`]) before it reports counts as
/// neither success nor failure and frees a half-open probe slot.
pub struct CircuitBreaker {
    store: Store,
    predicate: Option<Typed<bool>>,
    not_failure: NotFailure,
}

impl Clone for CircuitBreaker {
    fn clone(&self) -> Self {
        CircuitBreaker {
            store: self.store.clone(),
            predicate: self.predicate.clone(),
            not_failure: self.not_failure,
        }
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.store.name())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// A builder reading time from `timer`, starting from the defaults
    /// listed on [`CircuitBreakerBuilder`].
    pub fn builder<T: Timer + 'static>(timer: T) -> CircuitBreakerBuilder {
        CircuitBreakerBuilder::new(timer)
    }

    /// Runs `op` if the breaker admits it, and records its outcome.
    ///
    /// `op` is a future of `Result<T, E>` or another staunch call (see
    /// [`Fallible`]). The operation's own error counts as a failure unless
    /// [`failure_if`](CircuitBreakerBuilder::failure_if) says otherwise; a
    /// timeout or a panic below counts as a failure; a cancellation, an
    /// inner open circuit and a rejection count as neither. The future is
    /// not polled (only dropped) when the call is refused.
    ///
    /// # Errors
    ///
    /// [`Error::CircuitOpen`](crate::Error::CircuitOpen) when refused; otherwise the operation's error
    /// ([`Error::Inner`](crate::Error::Inner) for a plain future's own error).
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned call counts as neither success nor failure.
    ///
    /// ```
    /// # use staunch::breaker::CircuitBreaker;
    /// # use staunch::scope::{Cancelled, CancelReason};
    /// # let rt = staunch::testing::VirtualRuntime::new();
    /// let breaker = CircuitBreaker::builder(rt.clone()).consecutive_failures(1).build()?;
    /// let out = rt.block_on(breaker.call(async { Ok::<_, std::io::Error>(7) })).unwrap();
    /// assert_eq!(out.unwrap(), 7);
    /// // A cancelled call below is never counted.
    /// let cancelled = staunch::Error::<std::io::Error>::Cancelled(Cancelled { reason: CancelReason::Shutdown });
    /// let _ = rt.block_on(breaker.call(staunch::Guarded::new(async { Err::<(), _>(cancelled) })));
    /// assert_eq!(breaker.metrics().calls, 1);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn call<G>(&self, op: G) -> Guarded<Call<'_, G>>
    where
        G: Fallible,
        G::Err: 'static,
    {
        Guarded::new(Call::new(self, op))
    }

    /// A breaker that judges outcomes by this one's rules (its
    /// [`failure_if`](CircuitBreakerBuilder::failure_if) and what errors it
    /// rejects count as) and keeps its state in `store` instead of in
    /// memory: the window, thresholds and timings are then the store's.
    /// This is how a breaker's state is shared between processes
    /// (staunch-redis builds its breaker this way); every API of the
    /// breaker works the same on it.
    ///
    /// A `CircuitBreaker` is itself a [`BreakerStore`], so a store can keep
    /// an in-memory breaker to fall back on.
    ///
    /// ```
    /// use staunch::breaker::{Admission, BreakerStore, CircuitBreaker, CircuitState, Metrics, Outcome, Permit};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// /// Admits every call and counts what it is told.
    /// #[derive(Default)]
    /// struct Tally { failures: AtomicU64 }
    ///
    /// impl BreakerStore for Tally {
    ///     fn admit(&self) -> Admission { Admission::Admitted(Permit::new(0, false)) }
    ///     fn report(&self, _: Permit, outcome: Outcome) {
    ///         if outcome == Outcome::Failure { self.failures.fetch_add(1, Ordering::Relaxed); }
    ///     }
    ///     fn state(&self) -> CircuitState { CircuitState::Closed }
    ///     fn metrics(&self) -> Metrics { Metrics::new(CircuitState::Closed) }
    ///     fn force(&self, _: CircuitState) {}
    ///     fn name(&self) -> &str { "tally" }
    /// }
    ///
    /// let rt = staunch::testing::VirtualRuntime::new();
    /// let rules = CircuitBreaker::builder(rt.clone())
    ///     .failure_if(|status: &u16| *status >= 500)
    ///     .build()?;
    /// let tally = std::sync::Arc::new(Tally::default()); // kept, to read it
    /// let breaker = rules.with_store(tally.clone());
    /// rt.block_on(async {
    ///     let _ = breaker.call(async { Err::<(), u16>(503) }).await;
    ///     let _ = breaker.call(async { Err::<(), u16>(404) }).await; // a success by the rules
    /// })?;
    /// assert_eq!(tally.failures.load(Ordering::Relaxed), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "with_store builds a new breaker; the one it is called on is unchanged"]
    pub fn with_store<S: BreakerStore>(&self, store: Arc<S>) -> CircuitBreaker {
        CircuitBreaker {
            store: Store::Custom(store),
            predicate: self.predicate.clone(),
            not_failure: self.not_failure,
        }
    }

    /// The in-memory machine, for tests that set its counters directly.
    #[cfg(test)]
    fn memory(&self) -> &machine::Shared {
        match &self.store {
            Store::Memory(shared) => shared,
            Store::Custom(_) => panic!("this breaker's state is in a custom store"),
        }
    }

    /// How this breaker counts an outcome, by the same rules as
    /// [`call`](Self::call): `Some(true)` a failure, `Some(false)` a
    /// success, `None` neither (a cancellation, a rejection or an open
    /// circuit below, or an error [`failure_if`](CircuitBreakerBuilder::failure_if)
    /// rejects when errors it rejects are ignored). `failure` is the
    /// outcome as [`Fallible::failure`] reads it, `None` for a success.
    /// For breakers that count outcomes themselves on top of this one's
    /// rules (staunch-redis's shared breaker).
    ///
    /// ```
    /// use staunch::breaker::CircuitBreaker;
    /// use staunch::{ErrorKind, Failure};
    ///
    /// let rt = staunch::testing::VirtualRuntime::new();
    /// let breaker = CircuitBreaker::builder(rt)
    ///     .failure_if(|code: &u16| *code >= 500)
    ///     .build()?;
    /// assert_eq!(breaker.counts_as_failure(Some(Failure::Inner(&503u16))), Some(true));
    /// assert_eq!(breaker.counts_as_failure(Some(Failure::Inner(&404u16))), Some(false));
    /// assert_eq!(breaker.counts_as_failure::<u16>(Some(Failure::Staunch(ErrorKind::Cancelled))), None);
    /// assert_eq!(breaker.counts_as_failure::<u16>(None), Some(false));
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    #[must_use]
    pub fn counts_as_failure<E: 'static>(&self, failure: Option<Failure<'_, E>>) -> Option<bool> {
        match self.classify(failure) {
            Outcome::Failure => Some(true),
            Outcome::Success => Some(false),
            Outcome::Neither => None,
        }
    }

    /// What one call's outcome means to the breaker.
    #[inline]
    fn classify<E: 'static>(&self, failure: Option<Failure<'_, E>>) -> Outcome {
        match failure {
            None => Outcome::Success,
            Some(Failure::Inner(e)) => self.classify_inner(e),
            Some(Failure::Staunch(ErrorKind::Timeout | ErrorKind::Panicked)) => Outcome::Failure,
            Some(Failure::Staunch(_)) => Outcome::Neither,
        }
    }

    #[inline]
    fn classify_inner<E: 'static>(&self, error: &E) -> Outcome {
        match &self.predicate {
            Some(is_failure) if is_failure.apply(error) == Some(false) => match self.not_failure {
                NotFailure::CountAsSuccess => Outcome::Success,
                NotFailure::Ignore => Outcome::Neither,
            },
            _ => Outcome::Failure,
        }
    }

    /// Whether the breaker counts `error` as a failure: what its
    /// [`failure_if`](CircuitBreakerBuilder::failure_if) predicate says for
    /// an error of that predicate's type, `true` for any other.
    #[must_use]
    pub fn is_failure<E: 'static>(&self, error: &E) -> bool {
        self.predicate
            .as_ref()
            .and_then(|p| p.apply(error))
            .unwrap_or(true)
    }

    /// Asks to make one call, for code that reports its outcome by hand.
    ///
    /// # Errors
    ///
    /// [`CircuitOpen`] when the breaker is open, forced open, or half-open
    /// with every probe slot taken (then `retry_after` is the time left
    /// before the probes' deadline).
    ///
    /// ```
    /// # use staunch::breaker::CircuitBreaker;
    /// # let rt = staunch::testing::VirtualRuntime::new();
    /// let breaker = CircuitBreaker::builder(rt).build()?;
    /// let permit = breaker.try_acquire()?;
    /// // ... make the call ...
    /// permit.success();
    /// assert_eq!(breaker.metrics().calls, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire(&self) -> Result<AdmittedCall, CircuitOpen> {
        let ticket = match self.store.acquire() {
            store::Acquired::Now(ticket) => ticket,
            store::Acquired::Refused(open) => return Err(open),
            // A store that decides by a round trip (a shared half-open
            // probe slot) cannot answer without waiting: refused for now,
            // `call` waits for the answer.
            store::Acquired::Decide(_) => {
                return Err(CircuitOpen {
                    retry_after: Duration::ZERO,
                });
            }
        };
        Ok(AdmittedCall {
            store: self.store.clone(),
            ticket: Some(ticket),
        })
    }

    /// Holds the breaker open until [`reset`](Self::reset) or
    /// [`force_closed`](Self::force_closed): every call is refused.
    ///
    /// A state-change event is emitted only if the state changes: forcing
    /// open a breaker already forced open does nothing.
    pub fn force_open(&self) {
        self.store.force(CircuitState::ForcedOpen);
    }

    /// Holds the breaker closed: every call is admitted and nothing trips
    /// (outcomes are still recorded in the metrics) until [`reset`](Self::reset).
    /// Does nothing (and emits no event) when already forced closed.
    pub fn force_closed(&self) {
        self.store.force(CircuitState::ForcedClosed);
    }

    /// Back to closed with an empty window and the first open duration.
    /// Emits a state-change event only if the breaker was not closed.
    pub fn reset(&self) {
        self.store.force(CircuitState::Closed);
    }

    /// The state now (making any transition that time has made due).
    #[must_use]
    pub fn state(&self) -> CircuitState {
        self.store.state()
    }

    /// A snapshot of the state and the window.
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        self.store.metrics()
    }
}

/// A call the [`CircuitBreaker`] admitted, whose outcome it waits for: report it
/// with [`success`](AdmittedCall::success) or [`failure`](AdmittedCall::failure).
///
/// Dropping it unreported counts as neither and frees its half-open probe
/// slot at once, so a caller that gives up never strands the breaker.
#[must_use = "report the call's outcome with success() or failure(); dropping it unreported counts as neither"]
pub struct AdmittedCall {
    store: Store,
    ticket: Option<Ticket>,
}

impl fmt::Debug for AdmittedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdmittedCall")
            .field("probe", &self.is_probe())
            .finish_non_exhaustive()
    }
}

impl AdmittedCall {
    /// The call succeeded.
    pub fn success(self) {
        self.report(Outcome::Success);
    }

    /// The call failed.
    pub fn failure(self) {
        self.report(Outcome::Failure);
    }

    /// Whether this permit is one of the half-open probes.
    #[must_use]
    pub fn is_probe(&self) -> bool {
        self.ticket.is_some_and(|t| t.probe())
    }

    fn report(mut self, verdict: Outcome) {
        if let Some(ticket) = self.ticket.take() {
            self.store.record(ticket, verdict);
        }
    }
}

impl Drop for AdmittedCall {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.store.release(ticket);
        }
    }
}

/// A borrowed permit, for [`CircuitBreaker::call`]; same rules as [`AdmittedCall`].
struct Guard<'a> {
    store: &'a Store,
    ticket: Ticket,
}

impl Guard<'_> {
    #[inline]
    fn report(self, verdict: Outcome) {
        // Reported: the drop (which releases an unreported ticket) must not run.
        let this = std::mem::ManuallyDrop::new(self);
        this.store.record(this.ticket, verdict);
    }

    /// Hands the ticket to a longer-lived owner, which must report or
    /// release it.
    #[inline]
    fn keep(self) -> Ticket {
        std::mem::ManuallyDrop::new(self).ticket
    }
}

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.store.release(self.ticket);
    }
}

/// A breaker is a store too: its admission and state, with its own window
/// and rules, for a store that falls back on an in-memory breaker.
impl BreakerStore for CircuitBreaker {
    fn admit(&self) -> Admission {
        match self.store.acquire() {
            store::Acquired::Now(ticket) => Admission::Admitted(Permit(ticket)),
            store::Acquired::Refused(open) => Admission::Refused(open),
            store::Acquired::Decide(pending) => Admission::Decide(pending),
        }
    }

    fn report(&self, permit: Permit, outcome: Outcome) {
        if outcome == Outcome::Neither {
            self.store.release(permit.0);
        } else {
            self.store.record(permit.0, outcome);
        }
    }

    fn state(&self) -> CircuitState {
        self.store.state()
    }

    fn metrics(&self) -> Metrics {
        self.store.metrics()
    }

    fn force(&self, to: CircuitState) {
        self.store.force(to);
    }

    fn name(&self) -> &str {
        self.store.name()
    }
}
