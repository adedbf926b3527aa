//! [`RateLimiter`]: one GCRA cell shared by every caller.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::clock::EpochClock;
use super::gcra::{Gcra, RateStore, admit};
use super::{RateError, RateLimited};
use crate::ConfigError;
use crate::nanos::saturating_nanos;
use crate::observe::{Event, Observers};
use crate::padded::Padded;
use crate::runtime::BoxTimer;
use crate::runtime::Timer;
use crate::sync::AtomicU64;

/// A steady rate: `count` calls per `period`.
///
/// ```
/// use staunch::rate::Rate;
/// use std::time::Duration;
///
/// assert_eq!(Rate::per_second(10), Rate::new(10, Duration::from_secs(1)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// How many calls...
    pub count: u32,
    /// ...per this long.
    pub period: Duration,
}

impl Rate {
    /// `count` calls per `period`.
    #[must_use]
    pub const fn new(count: u32, period: Duration) -> Rate {
        Rate { count, period }
    }
    /// `count` calls per second.
    #[must_use]
    pub const fn per_second(count: u32) -> Rate {
        Rate::new(count, Duration::from_secs(1))
    }
    /// `count` calls per minute.
    #[must_use]
    pub const fn per_minute(count: u32) -> Rate {
        Rate::new(count, Duration::from_secs(60))
    }

    /// The emission interval in nanoseconds, rounded up (never faster than asked).
    pub(crate) fn emission_ns(self) -> Result<u64, ConfigError> {
        if self.count == 0 {
            return Err(ConfigError::new(
                "rate",
                "must admit at least 1 call per period; to refuse everything, don't call",
            ));
        }
        if self.period.is_zero() {
            return Err(ConfigError::new(
                "rate",
                "the period must be above zero; use e.g. `Rate::per_second(n)`",
            ));
        }
        let period = self.period.as_nanos();
        // Calls are spaced in whole nanoseconds: a faster rate would round
        // up to one call a nanosecond, silently admitting up to `count`
        // times fewer calls than asked. Refused instead.
        if period < u128::from(self.count) {
            return Err(ConfigError::new(
                "rate",
                "is faster than one call per nanosecond (1 000 000 000 a second), the finest spacing the limiter keeps; lower the count or lengthen the period",
            ));
        }
        let emission = period.div_ceil(u128::from(self.count));
        u64::try_from(emission).map_err(|_| {
            ConfigError::new(
                "rate",
                "the interval between calls must lie between 1 ns and about 584 years",
            )
        })
    }
}

/// The settings a limiter and a keyed limiter share.
pub(crate) struct Settings {
    pub(crate) clock: EpochClock,
    pub(crate) gcra: Gcra,
    pub(crate) max_wait: Option<Duration>,
    pub(crate) name: Arc<str>,
    pub(crate) observers: Observers,
    /// Tells the observers; set with them, so programs without observers
    /// do not link the events.
    pub(crate) tell: Option<Tell>,
    /// A timer reading below this is decided on the quiet path: there is
    /// nobody to tell and the clock's clamp would change nothing. It is
    /// the clock's first clamped reading when there are no observers, and
    /// 0 (no reading is below it) when there are. So a check tests one
    /// number it compares with the reading it has just taken, instead of
    /// testing the observers and clamping the reading apart.
    pub(crate) quiet_below: u64,
}

/// What a limiter tells its observers.
pub(crate) enum Notice {
    /// A call of `cost` was admitted.
    Admitted { cost: u32 },
    /// A call of `cost` was refused; it could pass after `retry_after`.
    Limited { cost: u32, retry_after: Duration },
}

/// Tells the observers of the limiter named by the `Arc<str>` a [`Notice`].
pub(crate) type Tell = fn(&Observers, &Arc<str>, Notice);

/// The [`Tell`] stored with observers.
fn tell(observers: &Observers, name: &Arc<str>, notice: Notice) {
    observers.emit(|| match notice {
        Notice::Admitted { cost } => Event::RateAdmitted {
            name: name.clone(),
            cost,
        },
        Notice::Limited { cost, retry_after } => Event::RateLimited {
            name: name.clone(),
            cost,
            retry_after,
        },
    });
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("name", &self.name)
            .field("gcra", &self.gcra)
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

impl Settings {
    #[inline]
    pub(crate) fn check_cost(&self, cost: u32) -> Result<(), RateError> {
        if cost > self.gcra.burst {
            return Err(RateError::CostOverBurst {
                cost,
                burst: self.gcra.burst,
            });
        }
        Ok(())
    }

    /// Tells observers of an admission. The event is built out of line, so
    /// a check without observers stays a small leaf function.
    #[inline]
    pub(crate) fn admitted(&self, cost: u32) {
        if !self.observers.is_empty() {
            self.admitted_event(cost);
        }
    }

    #[cold]
    #[inline(never)]
    fn admitted_event(&self, cost: u32) {
        if let Some(tell) = self.tell {
            tell(&self.observers, &self.name, Notice::Admitted { cost });
        }
    }

    /// The refusal for `cost`, told to observers (out of line, as above).
    #[inline]
    pub(crate) fn limited(&self, cost: u32, wait_ns: u64) -> RateLimited {
        let retry_after = Duration::from_nanos(wait_ns);
        if !self.observers.is_empty() {
            self.limited_event(cost, retry_after);
        }
        RateLimited { retry_after }
    }

    #[cold]
    #[inline(never)]
    fn limited_event(&self, cost: u32, retry_after: Duration) {
        if let Some(tell) = self.tell {
            tell(
                &self.observers,
                &self.name,
                Notice::Limited { cost, retry_after },
            );
        }
    }

    /// Waits until `take` admits, or gives up when the wait would pass the
    /// maximum wait. Nothing is reserved while waiting.
    pub(crate) async fn until_ready(
        &self,
        cost: u32,
        mut take: impl FnMut(u64) -> Result<(), Result<u64, RateError>>,
    ) -> Result<(), RateError> {
        let start = self.clock.now_ns();
        let deadline = self
            .max_wait
            .map(|w| start.saturating_add(saturating_nanos(w)));
        loop {
            let now = self.clock.now_ns();
            match take(now) {
                Ok(()) => {
                    self.admitted(cost);
                    return Ok(());
                }
                Err(Err(error)) => return Err(error),
                Err(Ok(wait_ns)) => {
                    if deadline.is_some_and(|d| now.saturating_add(wait_ns) > d) {
                        return Err(self.limited(cost, wait_ns).into());
                    }
                    self.clock
                        .timer()
                        .sleep(Duration::from_nanos(wait_ns))
                        .await;
                }
            }
        }
    }
}

/// What [`RateLimiter::decide`] answers, before it becomes the caller's
/// `Result`.
///
/// Every path sets the tag to a constant, and the tag's value is the
/// answer to `is_ok()` as it stands (`Admitted` is 1), so a caller that
/// asks only that stores or tests the tag, and the wait, one subtraction,
/// is dropped. (Were the paths to return a `Result<(), RateLimited>`, a
/// refusal would build its `Duration` even for `is_ok()`, which reads it:
/// `Ok` is marked by an out-of-range nanosecond count in it.)
#[repr(u8)]
enum Decision {
    /// Refused; admitted after this many nanoseconds, never zero.
    Refused { wait_ns: u64 } = 0,
    /// Admitted.
    Admitted = 1,
}

impl Decision {
    #[inline]
    fn of(outcome: Result<(), u64>) -> Decision {
        match outcome {
            Ok(()) => Decision::Admitted,
            Err(wait_ns) => Decision::Refused { wait_ns },
        }
    }
}

/// A GCRA rate limiter shared by every caller of one resource; see the
/// [module docs](super).
///
/// `Clone + Send + Sync` natively; clones share one state. The state is in
/// memory unless the limiter was built with
/// [`build_with_store`](RateLimiterBuilder::build_with_store), whose store
/// type is `S`.
pub struct RateLimiter<S: RateStore = AtomicU64> {
    inner: Arc<Inner<S>>,
}

/// A limiter's settings and its state, in one allocation: a check follows
/// one pointer to reach both.
///
/// # Layout
///
/// Every check reads the settings and every admission writes the state, on
/// whichever thread calls. The state sits on cache lines of its own
/// ([`Padded`], 128 bytes), so a compare-and-swap on one core does not
/// evict the settings (the timer, the GCRA's numbers) from another core's
/// cache: with two threads checking at once, only the state's line moves
/// between them, as it must. The reference counts, written only by `clone`
/// and `drop`, sit before it, off its lines too.
struct Inner<S> {
    settings: Settings,
    /// The one TAT.
    state: Padded<S>,
}

impl<S: RateStore> Clone for RateLimiter<S> {
    fn clone(&self) -> Self {
        RateLimiter {
            inner: self.inner.clone(),
        }
    }
}

impl<S: RateStore> fmt::Debug for RateLimiter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.inner.settings;
        f.debug_struct("RateLimiter")
            .field("name", &s.name)
            .field("emission_interval", &self.emission_interval())
            .field("burst", &s.gcra.burst)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A builder for a limiter admitting `rate` on `timer`'s clock, with a
    /// burst of `rate.count` (one period's worth, as governor's quotas) and
    /// no maximum wait.
    pub fn builder<T: Timer + 'static>(timer: T, rate: Rate) -> RateLimiterBuilder {
        RateLimiterBuilder {
            timer: BoxTimer::new(timer),
            rate,
            burst: None,
            max_wait: None,
            epoch: None,
            name: Arc::from(""),
            observers: Observers::new(),
            tell: None,
        }
    }
}

impl<S: RateStore> RateLimiter<S> {
    /// Admits one call now, or says how long until it would be admitted.
    ///
    /// # Errors
    ///
    /// [`RateLimited`] with the wait; nothing is taken then.
    ///
    /// ```
    /// use staunch::rate::{Rate, RateLimiter};
    /// use staunch::testing::VirtualRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// let limiter = RateLimiter::builder(rt.clone(), Rate::per_second(10)).burst(2).build()?;
    /// assert!(limiter.check().is_ok());
    /// assert!(limiter.check().is_ok());
    /// let refused = limiter.check().unwrap_err();
    /// assert_eq!(refused.retry_after, Duration::from_millis(100));
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    #[inline]
    pub fn check(&self) -> Result<(), RateLimited> {
        match self.decide(1) {
            Decision::Admitted => Ok(()),
            Decision::Refused { wait_ns } => Err(RateLimited {
                retry_after: Duration::from_nanos(wait_ns),
            }),
        }
    }

    /// One decision for `cost` now, told to observers if there are any.
    ///
    /// Observers and the clock's clamp cost one branch together (see
    /// [`Settings::quiet_below`]), and are handled out of line, so a check
    /// compiled into its caller is the clock read and the decision.
    #[inline]
    fn decide(&self, cost: u32) -> Decision {
        let Inner { settings: s, state } = &*self.inner;
        let reading = s.clock.reading();
        if reading < s.quiet_below {
            Decision::of(admit(
                &**state,
                &s.gcra,
                s.clock.at_unclamped(reading),
                cost,
            ))
        } else {
            self.decide_observed(reading, cost)
        }
    }

    /// The decision at `reading`, clamped, then the event if there are
    /// observers.
    #[cold]
    #[inline(never)]
    fn decide_observed(&self, reading: u64, cost: u32) -> Decision {
        let Inner { settings: s, state } = &*self.inner;
        match admit(&**state, &s.gcra, s.clock.at(reading), cost) {
            Ok(()) => {
                s.admitted(cost);
                Decision::Admitted
            }
            Err(wait_ns) => {
                s.limited(cost, wait_ns);
                Decision::Refused { wait_ns }
            }
        }
    }

    /// Admits a call costing `cost` units of the rate now, or refuses.
    ///
    /// # Errors
    ///
    /// [`RateError::Limited`] with the wait; [`RateError::CostOverBurst`]
    /// when `cost` is above the burst, which no wait would ever fix.
    ///
    /// ```
    /// use staunch::rate::{Rate, RateError, RateLimiter};
    /// use staunch::testing::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::new();
    /// let limiter = RateLimiter::builder(rt, Rate::per_second(100)).burst(10).build()?;
    /// assert!(limiter.check_n(10).is_ok());
    /// assert!(matches!(limiter.check_n(11), Err(RateError::CostOverBurst { cost: 11, burst: 10 })));
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    #[inline]
    pub fn check_n(&self, cost: u32) -> Result<(), RateError> {
        self.inner.settings.check_cost(cost)?;
        match self.decide(cost) {
            Decision::Admitted => Ok(()),
            Decision::Refused { wait_ns } => Err(RateError::Limited(RateLimited {
                retry_after: Duration::from_nanos(wait_ns),
            })),
        }
    }

    /// Waits until one call is admitted (at most the builder's
    /// [`max_wait`](RateLimiterBuilder::max_wait), if set).
    ///
    /// # Errors
    ///
    /// [`RateLimited`] at once when the wait would exceed the maximum wait.
    ///
    /// # Cancel safety
    ///
    /// Nothing is reserved while waiting: dropping the future mid-wait
    /// leaves the limiter exactly as if the call had never come.
    ///
    /// ```
    /// use staunch::rate::{Rate, RateLimiter};
    /// use staunch::runtime::Timer;
    /// use staunch::testing::VirtualRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// let limiter = RateLimiter::builder(rt.clone(), Rate::per_second(10)).burst(1).build()?;
    /// rt.block_on(async {
    ///     let start = rt.now();
    ///     limiter.until_ready().await.unwrap();
    ///     limiter.until_ready().await.unwrap();
    ///     assert_eq!(rt.now() - start, Duration::from_millis(100));
    /// })
    /// .unwrap();
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub async fn until_ready(&self) -> Result<(), RateLimited> {
        match self.until_ready_n(1).await {
            Ok(()) => Ok(()),
            Err(RateError::Limited(limited)) => Err(limited),
            // A cost of 1 never exceeds a burst of at least 1, and a plain
            // limiter has no keys.
            Err(other) => Err(RateLimited {
                retry_after: other.retry_after().unwrap_or(Duration::MAX),
            }),
        }
    }

    /// Waits until a call costing `cost` is admitted (at most the maximum
    /// wait, if set).
    ///
    /// # Errors
    ///
    /// [`RateError::CostOverBurst`] at once for a cost above the burst;
    /// [`RateError::Limited`] at once when the wait would exceed the
    /// maximum wait.
    ///
    /// # Cancel safety
    ///
    /// As for [`until_ready`](Self::until_ready): nothing is held while
    /// waiting.
    pub async fn until_ready_n(&self, cost: u32) -> Result<(), RateError> {
        let Inner { settings: s, state } = &*self.inner;
        s.check_cost(cost)?;
        s.until_ready(cost, |now| admit(&**state, &s.gcra, now, cost).map_err(Ok))
            .await
    }

    /// The interval between two calls at the steady rate.
    #[must_use]
    pub fn emission_interval(&self) -> Duration {
        Duration::from_nanos(self.inner.settings.gcra.emission_ns)
    }

    /// How many calls may come at once.
    #[must_use]
    pub fn burst(&self) -> u32 {
        self.inner.settings.gcra.burst
    }

    /// The theoretical arrival time: when the limiter would be idle again,
    /// as time since the Unix epoch (zero for a fresh limiter). This single
    /// absolute value is the limiter's whole state.
    #[must_use]
    pub fn theoretical_arrival(&self) -> Duration {
        Duration::from_nanos(RateStore::load(&*self.inner.state))
    }
}

/// Configures a [`RateLimiter`] (or a
/// [`KeyedRateLimiter`](super::KeyedRateLimiter)); checked by `build`.
#[must_use = "a builder does nothing until you call `build()`"]
pub struct RateLimiterBuilder {
    pub(crate) timer: BoxTimer,
    pub(crate) rate: Rate,
    pub(crate) burst: Option<u32>,
    pub(crate) max_wait: Option<Duration>,
    pub(crate) epoch: Option<Duration>,
    pub(crate) name: Arc<str>,
    pub(crate) observers: Observers,
    pub(crate) tell: Option<Tell>,
}

impl fmt::Debug for RateLimiterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiterBuilder")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

impl RateLimiterBuilder {
    /// How many calls may come at once (default: the rate's `count`).
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// The longest `until_ready` waits; beyond it, it refuses at once with
    /// the wait it would have needed (default: no maximum). In a
    /// [`Policy`](crate::policy::Policy), `Duration::ZERO` makes the stage
    /// refuse instead of wait.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self
    }

    /// Where the timer's origin lies after the Unix epoch. By default the
    /// wall clock is read once at `build`; set it when the timer is virtual
    /// or when processes sharing state must agree to the nanosecond.
    ///
    /// The limiter counts nanoseconds since the Unix epoch in a `u64`, which
    /// ends in 2554: its clock stops one burst (`burst` intervals) before
    /// that, and `build` refuses an epoch later than that point.
    pub fn epoch(mut self, origin: Duration) -> Self {
        self.epoch = Some(origin);
        self
    }

    /// The name used in events.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Who hears about admitted and refused calls.
    pub fn observers(mut self, observers: Observers) -> Self {
        self.observers = observers;
        // Taken here, not in `build`, so that programs without observers do
        // not link the events (about 1 KB of wasm).
        self.tell = Some(tell);
        self
    }

    pub(crate) fn settings(self) -> Result<Settings, ConfigError> {
        let emission_ns = self.rate.emission_ns()?;
        let burst = self.burst.unwrap_or(self.rate.count);
        if burst == 0 {
            return Err(ConfigError::new(
                "burst",
                "must be at least 1, or no call could ever be admitted",
            ));
        }
        let gcra = Gcra::new(emission_ns, burst).ok_or_else(|| {
            ConfigError::new(
                "burst",
                "the burst times the interval between calls must stay under about 584 years; lower the burst or raise the rate",
            )
        })?;
        let clock = EpochClock::new(self.timer, self.epoch, gcra.span_ns()).ok_or_else(|| {
            ConfigError::new(
                "epoch",
                "the epoch plus the burst times the interval between calls must lie before the year 2554, where u64 nanoseconds end; set an earlier epoch",
            )
        })?;
        let quiet_below = if self.observers.is_empty() {
            clock.first_clamped_reading()
        } else {
            0
        };
        Ok(Settings {
            quiet_below,
            clock,
            gcra,
            max_wait: self.max_wait,
            name: self.name,
            observers: self.observers,
            tell: self.tell,
        })
    }

    /// Checks the settings and builds the limiter.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for a zero rate, a zero period, a rate faster than
    /// one call per nanosecond (the interval is not rounded down to zero
    /// nor up to a nanosecond, which would admit far fewer calls than
    /// asked), a zero burst, a burst whose calls, spaced
    /// at the rate, would span more than about 584 years, or an
    /// [`epoch`](Self::epoch) within one such span of the year 2554.
    // On wasm32 the timer is not `Send`; there is one thread there.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn build(self) -> Result<RateLimiter, ConfigError> {
        self.build_with_store(AtomicU64::new(0))
    }

    /// Checks the settings and builds the limiter keeping its state in
    /// `store` instead of in memory; limiters (in this process or others)
    /// sharing one store share one limit, whenever each was built, since
    /// the state is an absolute time.
    ///
    /// The limiter holds `store` itself, beside its settings, so a check
    /// reaches both through one pointer. To share one store between
    /// limiters in this process, pass each an [`Arc`] of it: an `Arc` of a
    /// store is a store.
    ///
    /// # Errors
    ///
    /// As for [`build`](Self::build).
    ///
    /// ```
    /// use staunch::rate::{Rate, RateLimiter, RateStore};
    /// use staunch::testing::VirtualRuntime;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    ///
    /// /// A TAT that counts its writes (a real store might live in memory
    /// /// shared between the processes of one host).
    /// #[derive(Default)]
    /// struct Counted { tat: AtomicU64, writes: AtomicUsize }
    ///
    /// impl RateStore for Counted {
    ///     fn load(&self) -> u64 { self.tat.load(Ordering::Acquire) }
    ///     fn compare_exchange(&self, current: u64, new: u64) -> Result<(), u64> {
    ///         self.tat.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)?;
    ///         self.writes.fetch_add(1, Ordering::Relaxed);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let rt = VirtualRuntime::new();
    /// let store = Arc::new(Counted::default());
    /// // Two limiters, one store: each holds an `Arc` of it.
    /// let a: RateLimiter<Arc<Counted>> =
    ///     RateLimiter::builder(rt.clone(), Rate::per_second(10)).burst(2).build_with_store(store.clone())?;
    /// let b = RateLimiter::builder(rt.clone(), Rate::per_second(10)).burst(2).build_with_store(store.clone())?;
    /// assert!(a.check().is_ok());
    /// assert!(b.check().is_ok());
    /// assert!(a.check().is_err(), "one limit for both");
    /// assert_eq!(store.writes.load(Ordering::Relaxed), 2);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    // On wasm32 the timer is not `Send`; there is one thread there.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn build_with_store<S: RateStore>(self, store: S) -> Result<RateLimiter<S>, ConfigError> {
        Ok(RateLimiter {
            inner: Arc::new(Inner {
                settings: self.settings()?,
                state: Padded(store),
            }),
        })
    }
}
