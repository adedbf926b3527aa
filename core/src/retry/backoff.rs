//! The backoff curves and jitter: a pure, seeded iterator of delays.
//!
//! Invariants: the un-jittered delay (`next`) never exceeds `max`, so once a
//! curve reaches the cap it stays there and no arithmetic can overflow;
//! every jittered delay lies in `[0, max]`.

use std::fmt;
use std::time::Duration;

use crate::ConfigError;
use crate::nanos::saturating_nanos;
use crate::rng::{SplitMix64, fresh_seed};

/// The default cap on a delay when none is set: 10 s (or the initial delay
/// if that is longer).
pub(crate) const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(10);
/// The default growth factor of an exponential backoff.
pub(crate) const DEFAULT_FACTOR: f64 = 2.0;
/// Decorrelated jitter draws the next delay from `[initial, previous * 3]`.
const DECORRELATED_GROWTH: u32 = 3;

/// How random spread is added to each delay, so that many clients that
/// failed together do not retry together.
///
/// With `d` the curve's delay and `cap` the maximum delay:
///
/// | jitter | delay |
/// | --- | --- |
/// | `None` | `d` |
/// | `Full` | uniform in `[0, d]` |
/// | `Equal` | uniform in `[d / 2, d]` |
/// | `Decorrelated` | uniform in `[initial, previous × 3]`, capped at `cap` (the curve is ignored) |
///
/// `Full` spreads load best; `Equal` keeps a floor; `Decorrelated` (from the
/// AWS architecture blog) grows on its own and suits long retry chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// No spread: the curve's delays exactly.
    #[default]
    None,
    /// Uniform in `[0, d]`.
    Full,
    /// Uniform in `[d / 2, d]`.
    Equal,
    /// Uniform in `[initial, previous × 3]`, capped at the maximum delay.
    Decorrelated,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Curve {
    Constant,
    Linear { step: Duration },
    Exponential,
    Fibonacci,
}

/// Configures a [`Backoff`]; start from [`Backoff::constant`],
/// [`Backoff::linear`], [`Backoff::exponential`] or [`Backoff::fibonacci`].
///
/// Defaults: factor 2 (exponential only), maximum delay 10 s (or the initial
/// delay if that is longer), no jitter, no limit on the count, a fresh
/// random seed.
#[derive(Clone)]
#[must_use = "a BackoffBuilder does nothing until `build()` is called"]
pub struct BackoffBuilder {
    curve: Curve,
    /// `curve`'s arithmetic (see [`Advance`]).
    advance: Advance,
    initial: Duration,
    factor: Option<f64>,
    /// What `build` says about a bad `factor`, worded when it was set: the
    /// float formatting is then linked only into programs that set a
    /// factor (about 10 KB of wasm), not into every program that builds a
    /// backoff.
    factor_problem: Option<String>,
    max_delay: Option<Duration>,
    /// What `build` says about a maximum below the initial delay, worded
    /// in `max_delay()` for the same reason (the `Duration` formatting).
    max_delay_problem: Option<String>,
    max_count: Option<usize>,
    jitter: Jitter,
    /// `jitter`'s arithmetic (see [`Spread`]).
    spread: Spread,
    seed: Option<u64>,
}

impl fmt::Debug for BackoffBuilder {
    // The settings, as `#[derive(Debug)]` printed them before
    // the `*_problem` fields existed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackoffBuilder")
            .field("curve", &self.curve)
            .field("initial", &self.initial)
            .field("factor", &self.factor)
            .field("max_delay", &self.max_delay)
            .field("max_count", &self.max_count)
            .field("jitter", &self.jitter)
            .field("seed", &self.seed)
            .finish()
    }
}

impl BackoffBuilder {
    fn new(curve: Curve, advance: Advance, initial: Duration) -> BackoffBuilder {
        BackoffBuilder {
            curve,
            advance,
            initial,
            factor: None,
            factor_problem: None,
            max_delay: None,
            max_delay_problem: None,
            max_count: None,
            jitter: Jitter::None,
            spread: Jitter::None.spread(),
            seed: None,
        }
    }

    /// The growth factor of an exponential backoff (default 2; at least 1).
    pub fn factor(mut self, factor: f64) -> BackoffBuilder {
        self.factor = Some(factor);
        self.factor_problem = (!factor_ok(factor)).then(|| {
            format!(
                "must be a finite number of at least 1, not {factor}; use 2 to double each delay"
            )
        });
        self
    }

    /// The longest delay; the curve saturates here and never overflows.
    pub fn max_delay(mut self, max: Duration) -> BackoffBuilder {
        self.max_delay = Some(max);
        // The default maximum is never below the initial delay (fixed by
        // the constructor), so only this setter can make that problem.
        self.max_delay_problem = (self.initial > max).then(|| {
            format!(
                "the initial delay {:?} is above the maximum delay {max:?}; raise the maximum or lower the initial delay",
                self.initial
            )
        });
        self
    }

    /// Yield at most `count` delays, then end (default: no limit).
    pub fn max_count(mut self, count: usize) -> BackoffBuilder {
        self.max_count = Some(count);
        self
    }

    /// The random spread to add (default [`Jitter::None`]).
    #[inline]
    pub fn jitter(mut self, jitter: Jitter) -> BackoffBuilder {
        self.jitter = jitter;
        self.spread = jitter.spread();
        self
    }

    /// Seeds the jitter, so the same seed always gives the same delays
    /// (default: a fresh seed per `build()`).
    pub fn seed(mut self, seed: u64) -> BackoffBuilder {
        self.seed = Some(seed);
        self
    }

    /// Checks the settings and builds the iterator.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a factor below 1, infinite or NaN, or set on a
    /// curve other than exponential; an initial delay above the maximum; a
    /// zero initial delay on a curve that would never grow from it
    /// (exponential, fibonacci, decorrelated jitter); a count of zero.
    pub fn build(&self) -> Result<Backoff, ConfigError> {
        let factor = match (self.curve, self.factor) {
            (Curve::Exponential, f) => {
                let f = f.unwrap_or(DEFAULT_FACTOR);
                if !factor_ok(f) {
                    // Only `factor()` sets a factor, and it words the
                    // problem with a bad one.
                    return Err(ConfigError::new(
                        "factor",
                        self.factor_problem.clone().unwrap_or_default(),
                    ));
                }
                f
            }
            (_, Some(_)) => {
                return Err(ConfigError::new(
                    "factor",
                    "only an exponential backoff has a factor; use `Backoff::exponential`",
                ));
            }
            (_, None) => 1.0,
        };
        let max = self
            .max_delay
            .unwrap_or_else(|| DEFAULT_MAX_DELAY.max(self.initial));
        if self.initial > max {
            return Err(ConfigError::new(
                "max_delay",
                self.max_delay_problem.clone().unwrap_or_default(),
            ));
        }
        let grows_from_start = matches!(self.curve, Curve::Exponential | Curve::Fibonacci)
            || self.jitter == Jitter::Decorrelated;
        if grows_from_start && self.initial.is_zero() {
            return Err(ConfigError::new(
                "initial delay",
                "must be above zero for this curve or jitter, or every delay would be zero; use `Backoff::constant(Duration::ZERO)` for immediate retries",
            ));
        }
        if self.max_count == Some(0) {
            return Err(ConfigError::new(
                "max_count",
                "must be at least 1; a backoff with no delays allows no retries",
            ));
        }
        let seed = self.seed.unwrap_or_else(fresh_seed);
        Ok(Backoff {
            curve: self.curve,
            advance: self.advance,
            initial: self.initial,
            factor,
            max,
            jitter: self.jitter,
            spread: self.spread,
            max_count: self.max_count,
            remaining: self.max_count,
            seed,
            rng: SplitMix64::new(seed),
            next: self.initial,
            before: Duration::ZERO,
            last_jittered: self.initial,
        })
    }
}

/// A built backoff's settings, for an API that takes a builder
/// ([`RetryBuilder::backoff`](super::RetryBuilder::backoff)): its schedule
/// starts again from the first delay, with the same seed, however far the
/// backoff was iterated.
impl From<Backoff> for BackoffBuilder {
    fn from(built: Backoff) -> BackoffBuilder {
        BackoffBuilder {
            curve: built.curve,
            advance: built.advance,
            initial: built.initial,
            factor: matches!(built.curve, Curve::Exponential).then_some(built.factor),
            factor_problem: None,
            max_delay: Some(built.max),
            max_delay_problem: None,
            max_count: built.max_count,
            jitter: built.jitter,
            spread: built.spread,
            seed: Some(built.seed),
        }
    }
}

/// A pure, seeded, clonable iterator of retry delays.
///
/// Curves: constant, linear, exponential (with a factor) and fibonacci;
/// [`Jitter`] on top; a maximum delay the curve saturates at (a factor of 10
/// over 1 000 steps simply stays at the cap); an optional maximum count.
/// It never reads a clock and never sleeps: the same seed gives the same
/// delays, so schedules can be tested exactly and a clone replays them.
///
/// # Example
///
/// ```
/// use staunch::retry::Backoff;
/// use std::time::Duration;
///
/// let ms = Duration::from_millis;
/// let delays: Vec<_> = Backoff::exponential(ms(100)).max_delay(ms(1000)).build()?.take(6).collect();
/// assert_eq!(delays, [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Backoff {
    curve: Curve,
    /// `curve`'s arithmetic (see [`Advance`]).
    advance: Advance,
    initial: Duration,
    factor: f64,
    max: Duration,
    jitter: Jitter,
    /// `jitter`'s arithmetic (see [`Spread`]).
    spread: Spread,
    max_count: Option<usize>,
    remaining: Option<usize>,
    seed: u64,
    rng: SplitMix64,
    /// The curve's next delay, before jitter; never above `max`.
    next: Duration,
    /// The curve's delay before `next` (fibonacci only).
    before: Duration,
    /// The previous decorrelated delay.
    last_jittered: Duration,
}

impl fmt::Debug for Backoff {
    // The fields `#[derive(Debug)]` printed before `spread` existed (a
    // function's address says nothing `jitter` does not).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backoff")
            .field("curve", &self.curve)
            .field("initial", &self.initial)
            .field("factor", &self.factor)
            .field("max", &self.max)
            .field("jitter", &self.jitter)
            .field("max_count", &self.max_count)
            .field("remaining", &self.remaining)
            .field("seed", &self.seed)
            .field("rng", &self.rng)
            .field("next", &self.next)
            .field("before", &self.before)
            .field("last_jittered", &self.last_jittered)
            .finish()
    }
}

/// How one [`Jitter`] spreads the curve's delay. Chosen where the jitter
/// is set, from a value the caller usually writes out
/// (`.jitter(Jitter::Full)`), so the compiler keeps only the kinds a
/// program uses: a `match` in `next` would link all four into every
/// browser build.
type Spread = fn(&mut Backoff, Duration) -> Duration;

/// The delay that follows `next` on one [`Curve`], before the cap; chosen by
/// the curve's constructor, so a program links only the curves it uses
/// (as [`Spread`] does for jitter).
type Advance = fn(&mut Backoff) -> Duration;

impl Jitter {
    #[inline]
    fn spread(self) -> Spread {
        match self {
            Jitter::None => |_, delay| delay,
            Jitter::Full => |b, delay| b.rng.between(Duration::ZERO, delay),
            Jitter::Equal => |b, delay| b.rng.between(delay / 2, delay),
            Jitter::Decorrelated => |b, _| {
                let high = b
                    .last_jittered
                    .saturating_mul(DECORRELATED_GROWTH)
                    .min(b.max);
                let d = b.rng.between(b.initial, high);
                b.last_jittered = d;
                d
            },
        }
    }
}

impl Backoff {
    /// The same delay every time.
    pub fn constant(delay: Duration) -> BackoffBuilder {
        BackoffBuilder::new(Curve::Constant, |b| b.next, delay)
    }

    /// `initial`, `initial + step`, `initial + 2 step`, ...
    pub fn linear(initial: Duration, step: Duration) -> BackoffBuilder {
        BackoffBuilder::new(
            Curve::Linear { step },
            |b| match b.curve {
                Curve::Linear { step } => b.next.saturating_add(step),
                _ => b.next,
            },
            initial,
        )
    }

    /// `initial`, `initial × factor`, `initial × factor²`, ... (factor 2 by default).
    pub fn exponential(initial: Duration) -> BackoffBuilder {
        BackoffBuilder::new(Curve::Exponential, |b| scale(b.next, b.factor), initial)
    }

    /// `initial`, `initial`, `2 initial`, `3 initial`, `5 initial`, ...
    pub fn fibonacci(initial: Duration) -> BackoffBuilder {
        BackoffBuilder::new(
            Curve::Fibonacci,
            |b| {
                let sum = b.before.saturating_add(b.next);
                b.before = b.next;
                sum
            },
            initial,
        )
    }

    /// The longest delay this backoff yields.
    #[must_use]
    pub fn max_delay(&self) -> Duration {
        self.max
    }

    /// The seed the jitter started from.
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// The same backoff from its start, seeded with `seed`.
    pub(crate) fn restarted(&self, seed: u64) -> Backoff {
        Backoff {
            seed,
            remaining: self.max_count,
            rng: SplitMix64::new(seed),
            next: self.initial,
            before: Duration::ZERO,
            last_jittered: self.initial,
            ..self.clone()
        }
    }

    fn advance_curve(&mut self) {
        self.next = (self.advance)(self).min(self.max);
    }
}

/// `d × factor`, rounded to the nanosecond, saturating at
/// [`Duration::MAX`] instead of overflowing. Past what a `u64` of
/// nanoseconds holds (584 years) it computes in seconds, so a growing curve
/// never comes back down at that cap, and a huge factor on a delay under a
/// second jumps past it rather than staying where it was.
fn scale(d: Duration, factor: f64) -> Duration {
    // `+ 0.5` then truncation rounds a non-negative product half up, without
    // linking a `round` routine into the browser build.
    let product = saturating_nanos(d) as f64 * factor;
    if product < u64::MAX as f64 {
        return Duration::from_nanos((product + 0.5) as u64);
    }
    // Whole seconds from here on: sub-second precision is meaningless past
    // 584 years, and a saturating float-to-integer cast reaches the cap.
    // The fraction of a second counts: 1 ms × 10^14 is 10^11 s, not 0 s.
    let secs = (d.as_secs() as f64 + f64::from(d.subsec_nanos()) / 1e9) * factor;
    if secs < u64::MAX as f64 {
        Duration::from_secs(secs as u64).max(d)
    } else {
        Duration::MAX
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if let Some(remaining) = &mut self.remaining {
            *remaining = remaining.checked_sub(1)?;
        }
        let delay = self.next;
        self.advance_curve();
        if delay == Duration::MAX {
            // "Forever" stays forever: jitter would turn it into a finite
            // (if absurd) wait that a retry would then sleep through.
            return Some(Duration::MAX);
        }
        Some((self.spread)(self, delay))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.remaining {
            Some(n) => (n, Some(n)),
            None => (usize::MAX, None),
        }
    }
}

/// Whether an exponential backoff's growth factor is usable: finite and at
/// least 1.
fn factor_ok(factor: f64) -> bool {
    factor.is_finite() && factor >= 1.0
}
