//! The breaker's settings and their validation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::machine::Shared;
use super::reason::{Tell, tell};
use super::store::Store;
use super::window::{MAX_BUCKETS, MAX_COUNT_WINDOW, WindowKind};
use super::{CircuitBreaker, NotFailure};
use crate::ConfigError;
use crate::observe::Observers;
use crate::retry::{Backoff, BackoffBuilder};
use crate::runtime::{AnyTimer, MaybeSend, MaybeSync, Timer};
use crate::typed::Typed;

/// Default count window: the last 100 calls.
pub(crate) const DEFAULT_WINDOW: u32 = 100;
/// Default minimum number of calls before a rate may trip the breaker.
pub(crate) const DEFAULT_MINIMUM_CALLS: u32 = 20;
/// Default failure rate that trips the breaker.
pub(crate) const DEFAULT_FAILURE_RATE: f64 = 0.5;
/// Default open duration.
pub(crate) const DEFAULT_OPEN: Duration = Duration::from_secs(30);
/// Default number of half-open probes.
pub(crate) const DEFAULT_PROBES: u32 = 3;
/// Default bound on how long half-open waits for its probes.
pub(crate) const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// The checked settings, shared by every clone of a breaker.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) window: WindowKind,
    pub(crate) minimum_calls: u32,
    pub(crate) failure_rate: f64,
    pub(crate) slow_call: Option<(Duration, f64)>,
    pub(crate) open: Backoff,
    pub(crate) probes: u32,
    pub(crate) probe_timeout: Duration,
}

/// Configures a [`CircuitBreaker`]; every setting is checked by
/// [`build`](CircuitBreakerBuilder::build).
///
/// Defaults, with the reasons:
///
/// | setting | default | why |
/// | --- | --- | --- |
/// | window | last 100 calls | resilience4j's size: big enough that a rate means something |
/// | minimum calls | 20 | resilience4j and Polly wait for 100, so a service called a few times a minute never trips; 20 calls make a 50 % rate meaningful without that blind spot |
/// | failure rate | 50 % | resilience4j's; Polly's 10 % trips on ordinary noise |
/// | open duration | 30 s, constant | between Polly's 5 s (which hammers a service still restarting) and resilience4j's 60 s (long user-visible outages); use [`open_backoff`](Self::open_backoff) to grow it |
/// | half-open probes | 3 | one probe decides everything in Polly (its issue 2381); 10 (resilience4j) lets much load through to a service that may still be down; 3 tolerates one unlucky probe |
/// | probe timeout | 60 s | a probe that hangs never strands the breaker half-open (resilience4j 903 / 935) |
/// | slow calls | not counted | no duration threshold suits every service |
/// | consecutive failures | not used | the rate rule covers it; set it for low-traffic services |
/// | what fails | every error; the rest count as successes | |
///
/// ```
/// use staunch::breaker::CircuitBreaker;
/// use staunch::retry::Backoff;
/// use staunch::testing::VirtualRuntime;
/// use std::time::Duration;
///
/// let rt = VirtualRuntime::new();
/// let breaker = CircuitBreaker::builder(rt.clone())
///     .time_window(Duration::from_secs(30), 10)
///     .minimum_calls(50)
///     .failure_rate(0.25)
///     .slow_calls(Duration::from_secs(2), 0.5)
///     .open_backoff(Backoff::exponential(Duration::from_secs(5)).max_delay(Duration::from_secs(300)))
///     .half_open_probes(5)
///     .failure_if(|e: &std::io::Error| e.kind() != std::io::ErrorKind::NotFound)
///     .name("inventory")
///     .build()?;
/// assert!(CircuitBreaker::builder(rt).failure_rate(1.5).build().is_err());
/// # drop(breaker);
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until you call `build()`"]
pub struct CircuitBreakerBuilder {
    clock: AnyTimer,
    consecutive_failures: Option<u32>,
    window: WindowKind,
    minimum_calls: u32,
    failure_rate: f64,
    slow_call: Option<(Duration, f64)>,
    open: BackoffBuilder,
    probes: u32,
    probe_timeout: Duration,
    not_failure: NotFailure,
    predicate: Option<Typed<bool>>,
    name: Arc<str>,
    observers: Observers,
    tell: Option<Tell>,
}

impl fmt::Debug for CircuitBreakerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerBuilder")
            .field("name", &self.name)
            .field("consecutive_failures", &self.consecutive_failures)
            .field("window", &self.window)
            .field("minimum_calls", &self.minimum_calls)
            .field("failure_rate", &self.failure_rate)
            .field("slow_call", &self.slow_call)
            .field("probes", &self.probes)
            .field("probe_timeout", &self.probe_timeout)
            .finish_non_exhaustive()
    }
}

impl CircuitBreakerBuilder {
    pub(crate) fn new<T: Timer + 'static>(timer: T) -> Self {
        CircuitBreakerBuilder {
            clock: AnyTimer::new(timer),
            consecutive_failures: None,
            window: WindowKind::Count(DEFAULT_WINDOW),
            minimum_calls: DEFAULT_MINIMUM_CALLS,
            failure_rate: DEFAULT_FAILURE_RATE,
            slow_call: None,
            open: Backoff::constant(DEFAULT_OPEN),
            probes: DEFAULT_PROBES,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            not_failure: NotFailure::CountAsSuccess,
            predicate: None,
            name: Arc::from(""),
            observers: Observers::new(),
            tell: None,
        }
    }

    /// Also trip after `n` failures in a row, whatever the window says
    /// (useful for services called too rarely to fill a window).
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive_failures = Some(n);
        self
    }

    /// Judge the failure rate over the last `size` calls (the default, with 100;
    /// at most 1 048 576, checked by [`build`](Self::build): the window takes
    /// one byte per call).
    pub fn count_window(mut self, size: u32) -> Self {
        self.window = WindowKind::Count(size);
        self
    }

    /// Judge the failure rate over the calls of the last `length`, kept in
    /// `buckets` buckets (constant memory; the window slides a bucket at a time;
    /// 1 to 1000 buckets).
    pub fn time_window(mut self, length: Duration, buckets: u32) -> Self {
        self.window = WindowKind::Time { length, buckets };
        self
    }

    /// How many calls the window must hold before a rate may trip the breaker.
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.minimum_calls = n;
        self
    }

    /// Trip when at least this share of the window's calls failed (in `(0, 1]`).
    /// Also the share of failed probes that reopens a half-open breaker.
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = rate;
        self
    }

    /// Count calls that take `threshold` or longer as slow, and trip when at
    /// least `rate` (in `(0, 1]`) of the window's calls were slow.
    pub fn slow_calls(mut self, threshold: Duration, rate: f64) -> Self {
        self.slow_call = Some((threshold, rate));
        self
    }

    /// Stay open this long after each trip (30 s by default).
    pub fn open_duration(mut self, duration: Duration) -> Self {
        self.open = Backoff::constant(duration);
        self
    }

    /// Stay open for the backoff's next delay after each trip: the first trip
    /// uses the first delay, a trip right after a failed half-open the next,
    /// and so on (capped by the backoff's maximum delay); closing starts over.
    pub fn open_backoff(mut self, backoff: BackoffBuilder) -> Self {
        self.open = backoff;
        self
    }

    /// How many probe calls half-open admits (3 by default); it closes once
    /// they all succeeded often enough, and reopens once too many failed.
    pub fn half_open_probes(mut self, n: u32) -> Self {
        self.probes = n;
        self
    }

    /// The longest half-open waits for a probe in flight to report,
    /// counted from the last probe admitted; after that it reopens, so a
    /// probe that hangs never strands the breaker. With no probe in flight
    /// there is nothing to wait for: a half-open breaker whose probes have
    /// all reported, but too few to decide, admits the next call as a
    /// probe however late it comes.
    pub fn probe_timeout(mut self, limit: Duration) -> Self {
        self.probe_timeout = limit;
        self
    }

    /// Which errors of type `E` count as failures (all by default).
    /// Errors of any other type count as failures; cancellation never
    /// counts, whatever this says. Name the type in the closure's argument:
    /// `.failure_if(|e: &std::io::Error| ...)`. A later call replaces an
    /// earlier one.
    pub fn failure_if<E: 'static>(
        mut self,
        is_failure: impl Fn(&E) -> bool + MaybeSend + MaybeSync + 'static,
    ) -> Self {
        self.predicate = Some(Typed::new(is_failure));
        self
    }

    /// What errors that [`failure_if`](Self::failure_if) rejects count as.
    pub fn not_failure(mut self, as_what: NotFailure) -> Self {
        self.not_failure = as_what;
        self
    }

    /// The name used in events.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Who hears about state changes and refused calls.
    pub fn observers(mut self, observers: Observers) -> Self {
        self.observers = observers;
        // The events are only made for observers: taking the code that
        // makes them here keeps it out of programs that register none.
        self.tell = Some(tell);
        self
    }

    /// Checks every setting and builds the breaker.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting when a rate is outside `(0, 1]`,
    /// a count is zero, a window is empty, a count window holds more than
    /// 1 048 576 calls, a time window has more than 1000 buckets, the
    /// minimum calls exceed a count window, or a duration is zero.
    // On wasm32 the timer is not `Send`; there is one thread there.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        let rate_ok = |r: f64| r > 0.0 && r <= 1.0;
        if !rate_ok(self.failure_rate) {
            return Err(ConfigError::new(
                "failure_rate",
                "must be above 0 and at most 1 (0.5 means half the calls)",
            ));
        }
        if let Some((threshold, rate)) = self.slow_call {
            if !rate_ok(rate) {
                return Err(ConfigError::new(
                    "slow_calls",
                    "the rate must be above 0 and at most 1",
                ));
            }
            if threshold.is_zero() {
                return Err(ConfigError::new(
                    "slow_calls",
                    "the threshold must be above zero, or every call is slow",
                ));
            }
        }
        if self.consecutive_failures == Some(0) {
            return Err(ConfigError::new(
                "consecutive_failures",
                "must be at least 1; leave it unset to trip on rates only",
            ));
        }
        if self.minimum_calls == 0 {
            return Err(ConfigError::new("minimum_calls", "must be at least 1"));
        }
        match self.window {
            WindowKind::Count(0) => {
                return Err(ConfigError::new(
                    "count_window",
                    "must hold at least 1 call",
                ));
            }
            WindowKind::Count(size) if size > MAX_COUNT_WINDOW => {
                return Err(ConfigError::new(
                    "count_window",
                    "may hold at most 1048576 calls (1 MiB, one byte per call); use a time window for larger volumes",
                ));
            }
            WindowKind::Count(size) if self.minimum_calls > size => {
                return Err(ConfigError::new(
                    "minimum_calls",
                    "is larger than the count window, so the rate could never trip; lower it or widen the window",
                ));
            }
            WindowKind::Time { length, buckets } => {
                if buckets == 0 || buckets > MAX_BUCKETS {
                    return Err(ConfigError::new(
                        "time_window",
                        "needs between 1 and 1000 buckets",
                    ));
                }
                if crate::nanos::saturating_nanos(length) < u64::from(buckets) {
                    return Err(ConfigError::new(
                        "time_window",
                        "is too short for its buckets; give it a positive length",
                    ));
                }
            }
            WindowKind::Count(_) => {}
        }
        if self.probes == 0 {
            return Err(ConfigError::new(
                "half_open_probes",
                "must be at least 1, or half-open could never close",
            ));
        }
        if self.probe_timeout.is_zero() {
            return Err(ConfigError::new("probe_timeout", "must be above zero"));
        }
        let open = self.open.build()?;
        if open.clone().next().is_none_or(|d| d.is_zero()) {
            return Err(ConfigError::new(
                "open_duration",
                "must be above zero, or an open breaker would refuse nothing",
            ));
        }
        let config = Config {
            consecutive_failures: self.consecutive_failures,
            window: self.window,
            minimum_calls: self.minimum_calls,
            failure_rate: self.failure_rate,
            slow_call: self.slow_call,
            open,
            probes: self.probes,
            probe_timeout: self.probe_timeout,
        };
        Ok(CircuitBreaker {
            not_failure: self.not_failure,
            store: Store::Memory(Arc::new(Shared::new(
                config,
                self.clock,
                self.name,
                self.observers,
                self.tell,
            ))),
            predicate: self.predicate,
        })
    }
}
