//! Adaptive concurrency: a [`ConcurrencyLimit`] that admits or queues calls
//! like a [`Bulkhead`](crate::bulkhead::Bulkhead), but finds its limit by
//! itself from each call's latency and outcome.
//!
//! Two algorithms ([`Algorithm`]): [`Aimd`] (grow by one while the limit is
//! in use, cut by a factor on overload) and [`Gradient2`] (shrink in
//! proportion as latency rises above its long-run baseline). Only calls that
//! finish teach it: a cancelled call frees its slot and teaches nothing. A
//! timeout or rejection below it is a sign of overload (a *drop*).
//!
//! Defaults, and why: `initial_limit` 20 (Netflix's: low enough not to flood
//! a cold upstream, high enough for an ordinary service to start at speed),
//! `min_limit` 1 (the upstream is always probed, so recovery is noticed),
//! `max_limit` 200 (a bound on how much the upstream may be made to queue if
//! latency readings mislead), no queue (like the bulkhead: callers over the
//! limit are refused at once unless you allow a queue).
//!
//! ```
//! use staunch::adaptive::{Aimd, ConcurrencyLimit};
//! use staunch::testing::VirtualRuntime;
//!
//! let rt = VirtualRuntime::new();
//! let limit = ConcurrencyLimit::builder(rt.clone(), Aimd::default())
//!     .initial_limit(2)
//!     .build()?;
//! rt.block_on(async {
//!     let a = limit.try_acquire().unwrap();
//!     let _b = limit.try_acquire().unwrap();
//!     assert!(limit.try_acquire().is_err()); // at the limit: refused
//!     a.success(); // a finished call teaches the limit
//!     assert_eq!(limit.limit(), 3); // the limit was in use: it grows
//! })
//! .unwrap();
//! # Ok::<(), staunch::ConfigError>(())
//! ```

mod algorithm;
mod slots;

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub use algorithm::{Aimd, Algorithm, Gradient2};

use crate::bulkhead::Rejected;
use crate::fallible::{Fallible, Guarded};
use crate::observe::{Event, Observers};
use crate::runtime::AnyTimer;
use crate::runtime::{BoxTask, Instant, Timer};
use crate::slot_wait::{Entered, Gate, WaitForSlot};
use crate::{ConfigError, Error};
use algorithm::Sample;
use slots::{Entry, Slots};

/// The default starting limit.
pub const DEFAULT_INITIAL_LIMIT: usize = 20;
/// The default lowest limit.
pub const DEFAULT_MIN_LIMIT: usize = 1;
/// The default highest limit.
pub const DEFAULT_MAX_LIMIT: usize = 200;

struct Shared {
    slots: Slots,
    timer: AnyTimer,
    queue_timeout: Option<Duration>,
    name: Arc<str>,
    observers: Observers,
    /// Tells the observers; set with them, so programs without observers
    /// do not link the events or their wording.
    tell: Option<Tell>,
}

/// What a limit tells its observers.
enum Notice<'a> {
    /// A call was rejected.
    Rejected(&'a Rejected),
    /// The limit moved from `from` to `to`.
    LimitChanged { from: usize, to: usize },
}

/// Tells the observers of the limit named `name` a [`Notice`].
type Tell = fn(&Observers, &Arc<str>, Notice<'_>);

/// The [`Tell`] stored with observers.
fn tell(observers: &Observers, name: &Arc<str>, notice: Notice<'_>) {
    observers.emit(|| match notice {
        Notice::Rejected(rejected) => Event::CallRejected {
            name: name.clone(),
            reason: rejected.to_string(),
        },
        Notice::LimitChanged { from, to } => Event::ConcurrencyLimitChanged {
            name: name.clone(),
            from,
            to,
        },
    });
}

/// A concurrency limit that learns; see the [module docs](self).
///
/// `Clone + Send + Sync` natively; clones share one limit.
///
/// # Cancel safety
///
/// A caller that stops waiting leaves the queue at once; a call dropped
/// while inside frees its slot and teaches the limit nothing.
#[derive(Clone)]
pub struct ConcurrencyLimit {
    shared: Arc<Shared>,
}

impl fmt::Debug for ConcurrencyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (inside, queued, limit) = self.shared.slots.load();
        f.debug_struct("ConcurrencyLimit")
            .field("name", &self.shared.name)
            .field("limit", &limit)
            .field("inside", &inside)
            .field("queued", &queued)
            .finish_non_exhaustive()
    }
}

impl ConcurrencyLimit {
    /// A builder for a limit that learns with `algorithm`, timing calls on
    /// `timer`; see the [module docs](self) for the defaults.
    pub fn builder<T: Timer + 'static>(
        timer: T,
        algorithm: impl Into<Algorithm>,
    ) -> ConcurrencyLimitBuilder {
        ConcurrencyLimitBuilder {
            timer: AnyTimer::new(timer),
            algorithm: algorithm.into(),
            initial: DEFAULT_INITIAL_LIMIT,
            min: DEFAULT_MIN_LIMIT,
            max: DEFAULT_MAX_LIMIT,
            max_queued: 0,
            queue_timeout: None,
            name: Arc::from(""),
            observers: Observers::new(),
            tell: None,
        }
    }

    /// The current limit.
    ///
    /// ```
    /// use staunch::adaptive::{ConcurrencyLimit, Gradient2};
    /// use staunch::testing::VirtualRuntime;
    ///
    /// let limit = ConcurrencyLimit::builder(VirtualRuntime::new(), Gradient2::default()).build()?;
    /// assert_eq!(limit.limit(), staunch::adaptive::DEFAULT_INITIAL_LIMIT);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    #[must_use]
    pub fn limit(&self) -> usize {
        self.shared.slots.load().2
    }

    /// How many calls are inside now.
    #[must_use]
    pub fn inside(&self) -> usize {
        self.shared.slots.load().0
    }

    /// How many callers wait now.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.shared.slots.load().1
    }

    /// Takes a slot now, or refuses without waiting.
    ///
    /// # Errors
    ///
    /// [`Rejected::Full`] (with the current limit) when the limit is reached
    /// or someone waits.
    ///
    /// ```
    /// use staunch::adaptive::{Aimd, ConcurrencyLimit};
    /// use staunch::testing::VirtualRuntime;
    ///
    /// let limit = ConcurrencyLimit::builder(VirtualRuntime::new(), Aimd::default())
    ///     .initial_limit(1)
    ///     .build()?;
    /// let permit = limit.try_acquire().unwrap();
    /// assert!(limit.try_acquire().is_err());
    /// permit.ignore(); // frees the slot, teaches nothing
    /// assert!(limit.try_acquire().is_ok());
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn try_acquire(&self) -> Result<LimitPermit, Rejected> {
        match self.shared.slots.enter(false) {
            Entry::Inside { in_flight } => Ok(self.permit(in_flight)),
            Entry::Full { limit } => Err(self.full(limit)),
            Entry::Queued(_) => Err(self.full(self.limit())),
        }
    }

    /// Takes a slot, waiting in the queue if there is room in it.
    ///
    /// # Errors
    ///
    /// [`Rejected::Full`] at once when the limit and the queue are full;
    /// [`Rejected::QueueTimeout`] when the wait exceeded the queue timeout.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the queue; no slot is lost.
    ///
    /// ```
    /// use staunch::adaptive::{Aimd, ConcurrencyLimit};
    /// use staunch::bulkhead::Rejected;
    /// use staunch::testing::VirtualRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// let limit = ConcurrencyLimit::builder(rt.clone(), Aimd::default())
    ///     .initial_limit(1)
    ///     .max_queued(1)
    ///     .queue_timeout(Duration::from_millis(50))
    ///     .build()?;
    /// rt.block_on(async {
    ///     let _held = limit.acquire().await.unwrap();
    ///     let waited = limit.acquire().await.unwrap_err();
    ///     assert!(matches!(waited, Rejected::QueueTimeout { .. }));
    /// })
    /// .unwrap();
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn acquire(&self) -> Acquire {
        Acquire(WaitForSlot::new(self.clone()))
    }

    /// Runs `op` inside the limit and learns from it. `op` is a future of
    /// `Result<T, E>` or another staunch call (see [`Fallible`]).
    ///
    /// A success is a latency sample; a timeout or a rejection below is a
    /// drop (overload); the operation's own error, a panic and an open
    /// circuit teach nothing (they say nothing about load); cancellation
    /// teaches nothing. For work that returns no `Result`, use
    /// [`acquire`](Self::acquire).
    ///
    /// # Errors
    ///
    /// [`Error::Rejected`] as for [`acquire`](Self::acquire) (the future is
    /// then dropped without being polled); otherwise the operation's error
    /// ([`Error::Inner`] for a plain future's own error).
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned call frees the slot and teaches nothing.
    ///
    /// ```
    /// use staunch::adaptive::{Aimd, ConcurrencyLimit};
    /// use staunch::testing::VirtualRuntime;
    /// use staunch::timeout::Elapsed;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// let limit = ConcurrencyLimit::builder(rt.clone(), Aimd::default().backoff(0.5))
    ///     .initial_limit(10)
    ///     .build()?;
    /// // A timeout below is overload: the limit halves.
    /// let timed_out = staunch::Guarded::new(async { Err::<(), staunch::Error<()>>(Elapsed { after: Duration::ZERO }.into()) });
    /// assert!(rt.block_on(limit.call(timed_out)).unwrap().unwrap_err().is_timeout());
    /// assert_eq!(limit.limit(), 5);
    /// assert_eq!(rt.block_on(limit.call(async { Ok::<_, std::io::Error>(7) })).unwrap().unwrap(), 7);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn call<G: Fallible>(
        &self,
        op: G,
    ) -> Guarded<impl Future<Output = Result<G::Ok, Error<G::Err>>>> {
        Guarded::new(async move {
            let permit = self.acquire().await?;
            let out = crate::fallible::lifted(op).await;
            match &out {
                Ok(_) => permit.success(),
                Err(Error::Timeout(_) | Error::Rejected(_) | Error::RateLimited(_)) => {
                    permit.dropped()
                }
                Err(_) => permit.ignore(),
            }
            out
        })
    }

    fn permit(&self, in_flight: usize) -> LimitPermit {
        LimitPermit {
            shared: Some(self.shared.clone()),
            started: self.shared.timer.now(),
            in_flight,
        }
    }

    fn full(&self, limit: usize) -> Rejected {
        let rejected = Rejected::Full {
            max_concurrent: limit,
            max_queued: self.shared.slots.max_queued,
        };
        self.reject(rejected)
    }

    fn reject(&self, rejected: Rejected) -> Rejected {
        if let Some(tell) = self.shared.tell {
            tell(
                &self.shared.observers,
                &self.shared.name,
                Notice::Rejected(&rejected),
            );
        }
        rejected
    }
}

/// Configures a [`ConcurrencyLimit`]; checked by [`build`](Self::build).
#[must_use = "a builder does nothing until you call `build()`"]
pub struct ConcurrencyLimitBuilder {
    timer: AnyTimer,
    algorithm: Algorithm,
    initial: usize,
    min: usize,
    max: usize,
    max_queued: usize,
    queue_timeout: Option<Duration>,
    name: Arc<str>,
    observers: Observers,
    tell: Option<Tell>,
}

impl fmt::Debug for ConcurrencyLimitBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimitBuilder")
            .field("algorithm", &self.algorithm)
            .field("initial", &self.initial)
            .field("min", &self.min)
            .field("max", &self.max)
            .field("max_queued", &self.max_queued)
            .field("queue_timeout", &self.queue_timeout)
            .finish_non_exhaustive()
    }
}

impl ConcurrencyLimitBuilder {
    /// The limit to start from (default [`DEFAULT_INITIAL_LIMIT`]).
    pub fn initial_limit(mut self, limit: usize) -> Self {
        self.initial = limit;
        self
    }
    /// The limit never goes below this (default [`DEFAULT_MIN_LIMIT`]).
    pub fn min_limit(mut self, limit: usize) -> Self {
        self.min = limit;
        self
    }
    /// The limit never goes above this (default [`DEFAULT_MAX_LIMIT`]).
    pub fn max_limit(mut self, limit: usize) -> Self {
        self.max = limit;
        self
    }
    /// Let up to `n` callers wait for a slot, first come first served (0 by default).
    pub fn max_queued(mut self, n: usize) -> Self {
        self.max_queued = n;
        self
    }
    /// Refuse a queued caller that waited `limit` without a slot.
    pub fn queue_timeout(mut self, limit: Duration) -> Self {
        self.queue_timeout = Some(limit);
        self
    }
    /// The name used in events.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }
    /// Who hears about rejections and limit changes.
    pub fn observers(mut self, observers: Observers) -> Self {
        self.observers = observers;
        self.tell = Some(tell);
        self
    }

    /// Checks the settings and builds the limit; the initial limit is
    /// clamped into `[min, max]`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for a zero minimum, a minimum above the maximum, or
    /// an algorithm setting out of range.
    // On wasm32 the timer is not `Send`; there is one thread there.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn build(self) -> Result<ConcurrencyLimit, ConfigError> {
        if self.min == 0 {
            return Err(ConfigError::new(
                "min_limit",
                "must be at least 1, or the limit could reach 0 and never learn again",
            ));
        }
        if self.min > self.max {
            return Err(ConfigError::new(
                "min_limit",
                format!(
                    "{} is above max_limit {}; lower it or raise max_limit",
                    self.min, self.max
                ),
            ));
        }
        self.algorithm.validate()?;
        let initial = self.initial.clamp(self.min, self.max);
        Ok(ConcurrencyLimit {
            shared: Arc::new(Shared {
                slots: Slots::new(
                    initial as f64,
                    self.min as f64,
                    self.max as f64,
                    self.max_queued,
                    self.algorithm.learner(),
                ),
                timer: self.timer,
                queue_timeout: self.queue_timeout,
                name: self.name,
                observers: self.observers,
                tell: self.tell,
            }),
        })
    }
}

/// A slot in a [`ConcurrencyLimit`]. Say how the call went with
/// [`success`](Self::success) or [`dropped`](Self::dropped); dropping the
/// permit without a verdict (a cancelled call) frees the slot and teaches
/// nothing.
///
/// ```
/// use staunch::adaptive::{Aimd, ConcurrencyLimit};
/// use staunch::testing::VirtualRuntime;
///
/// let limit = ConcurrencyLimit::builder(VirtualRuntime::new(), Aimd::default().backoff(0.5))
///     .initial_limit(8)
///     .build()?;
/// limit.try_acquire().unwrap().dropped(); // the upstream said "too much"
/// assert_eq!(limit.limit(), 4);
/// drop(limit.try_acquire().unwrap()); // cancelled: no change
/// assert_eq!(limit.limit(), 4);
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[must_use = "the slot is freed as soon as the permit is dropped; report the outcome with success() or dropped()"]
pub struct LimitPermit {
    shared: Option<Arc<Shared>>,
    started: Instant,
    in_flight: usize,
}

impl fmt::Debug for LimitPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitPermit")
            .field("started", &self.started)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl LimitPermit {
    /// The call finished normally: its latency is a sample.
    pub fn success(mut self) {
        self.finish(Some(false));
    }

    /// The call ended in a sign of overload (timed out, refused by the
    /// upstream): the limit backs off.
    pub fn dropped(mut self) {
        self.finish(Some(true));
    }

    /// The call finished but says nothing about load: free the slot only.
    pub fn ignore(mut self) {
        self.finish(None);
    }

    fn finish(&mut self, dropped: Option<bool>) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        let sample = dropped.map(|dropped| {
            let now = shared.timer.now();
            Sample {
                latency: now - self.started,
                in_flight: self.in_flight,
                dropped,
                now_ns: crate::nanos::saturating_nanos(now.since_origin()),
            }
        });
        if let (Some((from, to)), Some(tell)) = (shared.slots.release(sample).wake(), shared.tell) {
            tell(
                &shared.observers,
                &shared.name,
                Notice::LimitChanged { from, to },
            );
        }
    }
}

impl Drop for LimitPermit {
    fn drop(&mut self) {
        self.finish(None);
    }
}

impl Gate for ConcurrencyLimit {
    type Key = usize;
    /// Calls inside once this one is in.
    type Grant = usize;
    /// The limit that was full.
    type Full = usize;
    type Permit = LimitPermit;

    fn enter(&self) -> Entered<usize, usize, usize> {
        match self.shared.slots.enter(true) {
            Entry::Inside { in_flight } => Entered::Inside(in_flight),
            Entry::Queued(id) => Entered::Queued(id),
            Entry::Full { limit } => Entered::Full(limit),
        }
    }

    fn poll_grant(&self, id: usize, waker: &Waker) -> Option<usize> {
        self.shared.slots.poll(id, waker)
    }

    fn leave(&self, id: usize) -> Option<usize> {
        let slots = &self.shared.slots;
        slots.leave(id).then(|| slots.load().0)
    }

    fn give_back(&self) {
        let _unchanged = self.shared.slots.release(None).wake();
    }

    fn queue_sleep(&self) -> Option<BoxTask> {
        let shared = &self.shared;
        shared.queue_timeout.map(|d| shared.timer.sleep(d))
    }

    fn permit(&self, in_flight: usize) -> LimitPermit {
        ConcurrencyLimit::permit(self, in_flight)
    }

    fn full(&self, limit: usize) -> Rejected {
        ConcurrencyLimit::full(self, limit)
    }

    fn timed_out(&self) -> Rejected {
        let waited = self.shared.queue_timeout.unwrap_or_default();
        self.reject(Rejected::QueueTimeout { waited })
    }
}

/// The future returned by [`ConcurrencyLimit::acquire`]; it waits in line
/// the way a bulkhead's callers do (first come, first served).
#[must_use = "futures do nothing unless awaited; this one waits for a slot under the limit"]
pub struct Acquire(WaitForSlot<ConcurrencyLimit>);

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("waiting", &self.0.is_waiting())
            .finish_non_exhaustive()
    }
}

impl Future for Acquire {
    type Output = Result<LimitPermit, Rejected>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_wait(cx)
    }
}
