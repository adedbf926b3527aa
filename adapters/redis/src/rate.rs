//! [`RedisRateLimiter`]: one GCRA limit per key, shared by every process
//! that talks to the same Redis.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script};
use staunch::ConfigError;
use staunch::observe::{Event, Observer, Observers};
use staunch::rate::{KeyedRateLimiter, Rate, RateError, RateLimited, RateLimiter};
use staunch::runtime::{Instant, Timer};
use thiserror::Error;

/// What a limiter does while Redis does not answer (down, too slow, or
/// refusing the script).
///
/// | mode | a call while Redis fails | the quota across processes |
/// |---|---|---|
/// | [`FallbackToLocal`](Self::FallbackToLocal) (default) | decided by a limiter in this process with the same rate and burst | up to one quota *per process* |
/// | [`FailOpen`](Self::FailOpen) | admitted | none |
/// | [`FailClosed`](Self::FailClosed) | refused with [`RedisRateError::Unavailable`] | never exceeded (nothing passes) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureMode {
    /// Keep limiting with this process's own state: each process then
    /// admits up to the full quota on its own.
    #[default]
    FallbackToLocal,
    /// Admit every call: availability over the limit.
    FailOpen,
    /// Refuse every call: the limit over availability.
    FailClosed,
}

impl FailureMode {
    fn describe(self) -> &'static str {
        match self {
            FailureMode::FallbackToLocal => "fallback to local state",
            FailureMode::FailOpen => "fail open",
            FailureMode::FailClosed => "fail closed",
        }
    }
}

/// Why a shared rate check refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RedisRateError {
    /// Not now; the same call would be admitted after the wait inside.
    #[error(transparent)]
    Limited(#[from] RateLimited),
    /// The cost is above the burst, so no wait would ever be enough.
    #[error(
        "a cost of {cost} can never be admitted: the burst is {burst}; split the work into parts of at most {burst} or raise the burst"
    )]
    CostOverBurst {
        /// The cost asked for.
        cost: u32,
        /// The limiter's burst.
        burst: u32,
    },
    /// Redis did not answer and the limiter is [`FailureMode::FailClosed`].
    #[error(
        "rate limiter {name:?} refuses while Redis is unavailable (fail closed): {reason}; it asks Redis again after {retry_after:?}"
    )]
    Unavailable {
        /// The limiter's name.
        name: Arc<str>,
        /// The last Redis failure, in words.
        reason: String,
        /// When the limiter will next ask Redis.
        retry_after: Duration,
    },
}

impl RedisRateError {
    /// How long to wait before the same call could succeed, or `None` when
    /// no wait is enough ([`RedisRateError::CostOverBurst`]).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RedisRateError::Limited(l) => Some(l.retry_after),
            RedisRateError::Unavailable { retry_after, .. } => Some(*retry_after),
            RedisRateError::CostOverBurst { .. } => None,
        }
    }
}

/// Counters of what a limiter did, for tests and dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RedisRateStats {
    /// Decisions Redis made (admitted or refused).
    pub shared_decisions: u64,
    /// Decisions made without Redis, by the failure mode.
    pub degraded_decisions: u64,
    /// Redis calls that failed or timed out.
    pub store_failures: u64,
    /// Keys the script found corrupt (not a number, wrong type, or further
    /// ahead than any admission leaves them) and rebuilt.
    pub rebuilt_keys: u64,
    /// Whether the limiter is in its failure mode right now.
    pub degraded: bool,
}

/// A GCRA rate limit per key shared through Redis; see the
/// [crate docs](crate).
///
/// The decision runs as one Lua script on the Redis server, reading the
/// server's `TIME`, so it is atomic and no client clock is involved. Every
/// key expires when its limit is idle again (TTL = the TAT horizon).
///
/// Clones share one connection and one state.
pub struct RedisRateLimiter<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for RedisRateLimiter<T> {
    fn clone(&self) -> Self {
        RedisRateLimiter {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for RedisRateLimiter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("name", &self.inner.name)
            .field("emission_us", &self.inner.emission_us)
            .field("burst", &self.inner.burst)
            .field("on_failure", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

struct Inner<T> {
    name: Arc<str>,
    prefix: String,
    client: Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    script: Script,
    timer: T,
    emission_us: u64,
    burst: u32,
    span_us: u64,
    call_timeout: Duration,
    retry_interval: Duration,
    max_wait: Option<Duration>,
    mode: FailureMode,
    local: KeyedRateLimiter<String>,
    observers: Observers,
    health: Mutex<Health>,
    counters: Counters,
}

#[derive(Debug)]
struct Health {
    degraded: bool,
    /// While degraded: Redis is not asked before this instant.
    next_probe: Instant,
    last_error: String,
}

#[derive(Debug, Default)]
struct Counters {
    shared: AtomicU64,
    degraded: AtomicU64,
    failures: AtomicU64,
    rebuilt: AtomicU64,
    degraded_now: AtomicBool,
}

/// What Redis answered, or why it did not.
struct Answer {
    /// `None` when admitted, else the wait.
    wait: Option<Duration>,
    /// The server's `TIME` at the decision, microseconds since the epoch.
    server_us: u64,
}

impl<T: Timer + Clone + 'static> RedisRateLimiter<T> {
    /// A builder for a limiter named `name` (its keys live under
    /// `staunch:rate:<name>:`), admitting `rate` per key, on `timer` (used
    /// for call timeouts and waits only; decisions use Redis's clock).
    ///
    /// Defaults: burst `rate.count`, call timeout 50 ms, retry interval
    /// 250 ms, no maximum wait, [`FailureMode::FallbackToLocal`].
    pub fn builder(
        timer: T,
        client: Client,
        name: impl Into<Arc<str>>,
        rate: Rate,
    ) -> RedisRateLimiterBuilder<T> {
        RedisRateLimiterBuilder {
            timer,
            client,
            name: name.into(),
            rate,
            burst: None,
            call_timeout: Duration::from_millis(50),
            retry_interval: Duration::from_millis(250),
            max_wait: None,
            mode: FailureMode::default(),
            observers: Observers::new(),
        }
    }

    /// Admits one call for `key` now, or refuses; one Redis round trip (none
    /// while degraded, until the retry interval has passed).
    ///
    /// # Errors
    ///
    /// [`RedisRateError::Limited`] with the wait; while Redis fails, what the
    /// [`FailureMode`] says.
    pub async fn try_acquire(&self, key: &str) -> Result<(), RedisRateError> {
        self.try_acquire_n(key, 1).await
    }

    /// Admits a call for `key` costing `cost` units of the rate now, or
    /// refuses.
    ///
    /// # Errors
    ///
    /// As for [`try_acquire`](Self::try_acquire), and
    /// [`RedisRateError::CostOverBurst`] for a cost above the burst.
    pub async fn try_acquire_n(&self, key: &str, cost: u32) -> Result<(), RedisRateError> {
        self.try_acquire_timed(key, cost).await.map(drop)
    }

    /// As [`try_acquire_n`](Self::try_acquire_n), and on admission says
    /// when Redis decided, by the server's clock (time since the Unix
    /// epoch), or `None` when the failure mode decided. Useful for audit
    /// logs, and how the tests check the bound over every window exactly.
    ///
    /// # Errors
    ///
    /// As for [`try_acquire_n`](Self::try_acquire_n).
    pub async fn try_acquire_timed(
        &self,
        key: &str,
        cost: u32,
    ) -> Result<Option<Duration>, RedisRateError> {
        let s = &*self.inner;
        if cost > s.burst {
            return Err(RedisRateError::CostOverBurst {
                cost,
                burst: s.burst,
            });
        }
        if let Some(until) = s.skip_redis_until() {
            return s.degraded_decision(key, cost, until).map(|()| None);
        }
        match s.ask_redis(key, cost).await {
            Ok(answer) => {
                s.recovered();
                s.counters.shared.fetch_add(1, Ordering::Relaxed);
                match answer.wait {
                    None => {
                        s.observers.emit(|| Event::RateAdmitted {
                            name: s.name.clone(),
                            cost,
                        });
                        Ok(Some(Duration::from_micros(answer.server_us)))
                    }
                    Some(retry_after) => {
                        s.observers.emit(|| Event::RateLimited {
                            name: s.name.clone(),
                            cost,
                            retry_after,
                        });
                        Err(RateLimited { retry_after }.into())
                    }
                }
            }
            Err(reason) => {
                let until = s.failed(reason);
                s.degraded_decision(key, cost, until).map(|()| None)
            }
        }
    }

    /// Waits until one call for `key` is admitted (at most the builder's
    /// [`max_wait`](RedisRateLimiterBuilder::max_wait), if set).
    ///
    /// # Errors
    ///
    /// [`RedisRateError::Limited`] at once when the wait would pass the
    /// maximum wait; [`RedisRateError::Unavailable`] at once when Redis
    /// fails and the limiter fails closed.
    ///
    /// # Cancel safety
    ///
    /// Nothing is reserved while waiting.
    pub async fn acquire(&self, key: &str) -> Result<(), RedisRateError> {
        let s = &*self.inner;
        let deadline = s.max_wait.map(|w| s.timer.now() + w);
        loop {
            match self.try_acquire(key).await {
                Err(RedisRateError::Limited(limited)) => {
                    if deadline.is_some_and(|d| s.timer.now() + limited.retry_after > d) {
                        return Err(limited.into());
                    }
                    s.timer.sleep(limited.retry_after).await;
                }
                other => return other,
            }
        }
    }

    /// The Redis key that holds `key`'s state.
    #[must_use]
    pub fn redis_key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    /// What the limiter did so far.
    #[must_use]
    pub fn stats(&self) -> RedisRateStats {
        let c = &self.inner.counters;
        RedisRateStats {
            shared_decisions: c.shared.load(Ordering::Relaxed),
            degraded_decisions: c.degraded.load(Ordering::Relaxed),
            store_failures: c.failures.load(Ordering::Relaxed),
            rebuilt_keys: c.rebuilt.load(Ordering::Relaxed),
            degraded: c.degraded_now.load(Ordering::Relaxed),
        }
    }

    /// The limiter's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

impl<T: Timer + Clone + 'static> Inner<T> {
    /// While degraded: `Some(when Redis is next asked)` for a call that
    /// must not ask it. Once the retry interval is over, exactly one caller
    /// (the one that finds it over) gets `None` and probes; the others keep
    /// the failure mode until that probe's answer, so a recovering or still
    /// dead Redis costs one call a timeout, not every concurrent call.
    fn skip_redis_until(&self) -> Option<Instant> {
        if !self.counters.degraded_now.load(Ordering::Relaxed) {
            return None;
        }
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        if !health.degraded {
            return None;
        }
        let now = self.timer.now();
        if now < health.next_probe {
            return Some(health.next_probe);
        }
        // This call probes; hold the others off for one more interval.
        health.next_probe = now + self.retry_interval;
        None
    }

    /// One script call with the call timeout around connecting and asking.
    async fn ask_redis(&self, key: &str, cost: u32) -> Result<Answer, String> {
        let call = async {
            let mut conn = self.connection().await?;
            let answer: (i64, i64, i64, i64) = self
                .script
                .key(format!("{}{key}", self.prefix))
                .arg(self.emission_us)
                .arg(self.span_us)
                .arg(cost)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| {
                    // A broken connection is replaced on the next call.
                    self.forget_connection();
                    format!("script call failed: {e}")
                })?;
            Ok(answer)
        };
        match staunch::timeout::timeout(&self.timer, self.call_timeout, call).await {
            Ok(Ok((admitted, wait_us, rebuilt, server_us))) => {
                if rebuilt != 0 {
                    self.counters.rebuilt.fetch_add(1, Ordering::Relaxed);
                }
                let wait = (admitted != 1)
                    .then(|| Duration::from_micros(u64::try_from(wait_us).unwrap_or(0).max(1)));
                Ok(Answer {
                    wait,
                    server_us: u64::try_from(server_us).unwrap_or(0),
                })
            }
            Ok(Err(reason)) => Err(reason),
            Err(_elapsed) => {
                // The connection may be wedged (server stopped, DEBUG SLEEP):
                // start afresh next time rather than queue behind it.
                self.forget_connection();
                Err(format!(
                    "no answer within the call timeout of {:?}",
                    self.call_timeout
                ))
            }
        }
    }

    async fn connection(&self) -> Result<MultiplexedConnection, String> {
        if let Some(conn) = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(conn);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.call_timeout)
            .set_response_timeout(self.call_timeout);
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    fn forget_connection(&self) {
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Records a failure; returns when Redis will next be asked.
    fn failed(&self, reason: String) -> Instant {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let was_degraded = health.degraded;
        health.degraded = true;
        health.next_probe = self.timer.now() + self.retry_interval;
        health.last_error.clone_from(&reason);
        let until = health.next_probe;
        drop(health);
        self.counters.degraded_now.store(true, Ordering::Relaxed);
        if !was_degraded {
            self.observers.emit(|| Event::StoreModeChanged {
                name: self.name.clone(),
                degraded: true,
                reason: format!("{}: {reason}", self.mode.describe()),
            });
        }
        until
    }

    /// Records a success; reports the recovery if the limiter was degraded.
    fn recovered(&self) {
        if !self.counters.degraded_now.load(Ordering::Relaxed) {
            return;
        }
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        if !health.degraded {
            return;
        }
        health.degraded = false;
        drop(health);
        self.counters.degraded_now.store(false, Ordering::Relaxed);
        self.observers.emit(|| Event::StoreModeChanged {
            name: self.name.clone(),
            degraded: false,
            reason: "shared: Redis answers again".to_owned(),
        });
    }

    fn degraded_decision(
        &self,
        key: &str,
        cost: u32,
        until: Instant,
    ) -> Result<(), RedisRateError> {
        self.counters.degraded.fetch_add(1, Ordering::Relaxed);
        match self.mode {
            FailureMode::FailOpen => Ok(()),
            FailureMode::FailClosed => {
                let reason = self
                    .health
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .last_error
                    .clone();
                Err(RedisRateError::Unavailable {
                    name: self.name.clone(),
                    reason,
                    retry_after: until.saturating_duration_since(self.timer.now()),
                })
            }
            FailureMode::FallbackToLocal => match self.local.check_n(&key.to_owned(), cost) {
                Ok(()) => Ok(()),
                Err(RateError::CostOverBurst { cost, burst }) => {
                    Err(RedisRateError::CostOverBurst { cost, burst })
                }
                Err(other) => Err(RateLimited {
                    retry_after: other.retry_after().unwrap_or(self.retry_interval),
                }
                .into()),
            },
        }
    }
}

/// Configures a [`RedisRateLimiter`]; checked by [`build`](Self::build).
#[must_use = "a builder does nothing until you call `build()`"]
pub struct RedisRateLimiterBuilder<T> {
    timer: T,
    client: Client,
    name: Arc<str>,
    rate: Rate,
    burst: Option<u32>,
    call_timeout: Duration,
    retry_interval: Duration,
    max_wait: Option<Duration>,
    mode: FailureMode,
    observers: Observers,
}

impl<T> fmt::Debug for RedisRateLimiterBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiterBuilder")
            .field("name", &self.name)
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .field("call_timeout", &self.call_timeout)
            .field("retry_interval", &self.retry_interval)
            .field("on_failure", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<T: Timer + Clone + 'static> RedisRateLimiterBuilder<T> {
    /// How many calls may come at once per key (default: the rate's `count`).
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// The longest one Redis call (connecting included) may take before the
    /// limiter treats Redis as failed (default 50 ms).
    pub fn call_timeout(mut self, call_timeout: Duration) -> Self {
        self.call_timeout = call_timeout;
        self
    }

    /// After a failure, how long calls are decided by the failure mode
    /// without asking Redis; then one call asks again (default 250 ms).
    /// This keeps an outage from costing every call a timeout.
    pub fn retry_interval(mut self, retry_interval: Duration) -> Self {
        self.retry_interval = retry_interval;
        self
    }

    /// The longest [`acquire`](RedisRateLimiter::acquire) waits (default:
    /// no maximum).
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self
    }

    /// What to do while Redis fails (default
    /// [`FailureMode::FallbackToLocal`]).
    pub fn on_failure(mut self, mode: FailureMode) -> Self {
        self.mode = mode;
        self
    }

    /// Adds an observer for admissions, refusals and mode switches
    /// ([`Event::StoreModeChanged`]).
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observers = self.observers.with(observer);
        self
    }

    /// Checks the settings and builds the limiter. Does not connect: the
    /// first call does.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for an empty name, a zero rate or period, an
    /// interval under 1 µs or over a day, a zero burst, or a zero call
    /// timeout.
    pub fn build(self) -> Result<RedisRateLimiter<T>, ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::new(
                "name",
                "must not be empty: it namespaces the limiter's keys in Redis; pick one per limit",
            ));
        }
        if self.rate.count == 0 || self.rate.period.is_zero() {
            return Err(ConfigError::new(
                "rate",
                "must admit at least 1 call in a period above zero, e.g. `Rate::per_second(n)`",
            ));
        }
        let emission_ns = self
            .rate
            .period
            .as_nanos()
            .div_ceil(u128::from(self.rate.count));
        // Whole microseconds, rounded up: the script's arithmetic stays
        // exact in Lua's doubles, and rounding only makes the limit stricter.
        let emission_us = u64::try_from(emission_ns.div_ceil(1000)).unwrap_or(u64::MAX);
        if emission_ns < 1000 {
            return Err(ConfigError::new(
                "rate",
                "a shared limit admits at most 1,000,000 calls per second per key (the script counts in microseconds); use a cost per call or a local limiter",
            ));
        }
        if emission_us > 86_400_000_000 {
            return Err(ConfigError::new(
                "rate",
                "the interval between calls must be at most a day for a shared limit",
            ));
        }
        let burst = self.burst.unwrap_or(self.rate.count);
        if burst == 0 {
            return Err(ConfigError::new(
                "burst",
                "must be at least 1, or no call could ever be admitted",
            ));
        }
        if self.call_timeout.is_zero() {
            return Err(ConfigError::new(
                "call_timeout",
                "must be above zero, or every Redis call fails; 20-100 ms suits a local Redis",
            ));
        }
        let local = KeyedRateLimiter::builder(
            RateLimiter::builder(self.timer.clone(), self.rate)
                .burst(burst)
                .name(self.name.clone()),
        )
        .build()?;
        let now = self.timer.now();
        Ok(RedisRateLimiter {
            inner: Arc::new(Inner {
                prefix: format!("staunch:rate:{}:{}:", self.name.len(), self.name),
                name: self.name,
                client: self.client,
                conn: Mutex::new(None),
                script: Script::new(include_str!("gcra.lua")),
                timer: self.timer,
                emission_us,
                burst,
                span_us: emission_us.saturating_mul(u64::from(burst)),
                call_timeout: self.call_timeout,
                retry_interval: self.retry_interval,
                max_wait: self.max_wait,
                mode: self.mode,
                local,
                observers: self.observers,
                health: Mutex::new(Health {
                    degraded: false,
                    next_probe: now,
                    last_error: String::new(),
                }),
                counters: Counters::default(),
            }),
        })
    }
}
