//! The two ways a [`ConcurrencyLimit`](super::ConcurrencyLimit) learns: AIMD
//! and Gradient2, after Netflix's concurrency-limits.

use std::time::Duration;

use crate::ConfigError;

/// One finished call, as the algorithms see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// How long the call took from admission to its end.
    pub(crate) latency: Duration,
    /// Calls inside when it was admitted (itself included).
    pub(crate) in_flight: usize,
    /// Whether it ended in a sign of overload (a timeout, a rejection).
    pub(crate) dropped: bool,
    /// When it ended, in nanoseconds on the limit's timer.
    pub(crate) now_ns: u64,
}

/// Additive increase, multiplicative decrease: the limit grows by one per
/// call that finds it in use and shrinks by a factor on a drop or a call
/// slower than the latency threshold, at most once per round trip.
///
/// Defaults, and why: `backoff` 0.9 (Netflix's default: a gentle cut,
/// since a drop is one signal among many calls), `latency_threshold` 5 s
/// (Netflix's default "timeout": only drops and very slow calls count).
/// Set the threshold near the latency your callers can accept.
///
/// ```
/// use staunch::adaptive::Aimd;
/// use std::time::Duration;
///
/// let aimd = Aimd::default().backoff(0.8).latency_threshold(Duration::from_millis(50));
/// # drop(aimd);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aimd {
    backoff: f64,
    latency_threshold: Duration,
}

impl Default for Aimd {
    fn default() -> Self {
        Aimd {
            backoff: 0.9,
            latency_threshold: Duration::from_secs(5),
        }
    }
}

impl Aimd {
    /// The factor the limit is multiplied by on overload, in (0, 1).
    #[must_use]
    pub fn backoff(mut self, factor: f64) -> Self {
        self.backoff = factor;
        self
    }

    /// A call slower than this counts as overload.
    #[must_use]
    pub fn latency_threshold(mut self, threshold: Duration) -> Self {
        self.latency_threshold = threshold;
        self
    }
}

/// Gradient2: compares the latency of each call with a slow-moving average
/// of recent latencies; when calls get slower than `tolerance` times the
/// average, the upstream is queueing and the limit shrinks in proportion;
/// otherwise it grows by `queue_size` per update.
///
/// Defaults, and why (Netflix's, which have run at scale): `tolerance` 1.5
/// (latency may rise 50 % before the limit shrinks: normal jitter must not
/// look like overload), `smoothing` 0.2 (each update moves the limit a fifth
/// of the way, so one odd sample cannot swing it), `long_window` 600 samples
/// (the baseline moves slowly, so sustained queueing is noticed before it
/// becomes the new normal), `queue_size` 4 (the headroom probed for above
/// the current limit).
///
/// ```
/// use staunch::adaptive::Gradient2;
///
/// let gradient = Gradient2::default().tolerance(2.0).smoothing(0.5);
/// # drop(gradient);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gradient2 {
    tolerance: f64,
    smoothing: f64,
    long_window: u32,
    queue_size: f64,
}

impl Default for Gradient2 {
    fn default() -> Self {
        Gradient2 {
            tolerance: 1.5,
            smoothing: 0.2,
            long_window: 600,
            queue_size: 4.0,
        }
    }
}

impl Gradient2 {
    /// How much slower than the baseline a call may be before the limit
    /// shrinks (at least 1).
    #[must_use]
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }
    /// How far each update moves the limit toward its target, in (0, 1].
    #[must_use]
    pub fn smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = smoothing;
        self
    }
    /// How many samples the baseline latency averages over (at least 1).
    #[must_use]
    pub fn long_window(mut self, samples: u32) -> Self {
        self.long_window = samples;
        self
    }
    /// The headroom added above the limit on each update (0 or more).
    #[must_use]
    pub fn queue_size(mut self, calls: f64) -> Self {
        self.queue_size = calls;
        self
    }
}

/// Which algorithm a [`ConcurrencyLimit`](super::ConcurrencyLimit) uses.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Algorithm {
    /// See [`Aimd`].
    Aimd(Aimd),
    /// See [`Gradient2`].
    Gradient2(Gradient2),
}

impl From<Aimd> for Algorithm {
    fn from(a: Aimd) -> Self {
        Algorithm::Aimd(a)
    }
}

impl From<Gradient2> for Algorithm {
    fn from(g: Gradient2) -> Self {
        Algorithm::Gradient2(g)
    }
}

impl Algorithm {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Algorithm::Aimd(a) => {
                if !(a.backoff > 0.0 && a.backoff < 1.0) {
                    return Err(ConfigError::new(
                        "backoff",
                        "must lie strictly between 0 and 1 (0.9 cuts the limit by a tenth)",
                    ));
                }
                if a.latency_threshold.is_zero() {
                    return Err(ConfigError::new(
                        "latency_threshold",
                        "must be above zero, or every call counts as overload",
                    ));
                }
            }
            Algorithm::Gradient2(g) => {
                if !(g.tolerance >= 1.0 && g.tolerance.is_finite()) {
                    return Err(ConfigError::new(
                        "tolerance",
                        "must be a finite number of at least 1 (1.5 lets latency rise 50 %)",
                    ));
                }
                if !(g.smoothing > 0.0 && g.smoothing <= 1.0) {
                    return Err(ConfigError::new(
                        "smoothing",
                        "must lie in (0, 1]; 1 follows every sample, 0.2 is the default",
                    ));
                }
                if g.long_window == 0 {
                    return Err(ConfigError::new("long_window", "must be at least 1 sample"));
                }
                if !(g.queue_size >= 0.0 && g.queue_size.is_finite()) {
                    return Err(ConfigError::new(
                        "queue_size",
                        "must be a finite number of at least 0",
                    ));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn learner(self) -> Learner {
        match self {
            Algorithm::Aimd(a) => Learner::Aimd {
                config: a,
                last_cut_ns: None,
            },
            Algorithm::Gradient2(g) => Learner::Gradient2 {
                config: g,
                long_ns: None,
            },
        }
    }
}

/// An algorithm with its running state.
#[derive(Debug)]
pub(crate) enum Learner {
    Aimd {
        config: Aimd,
        /// When the limit was last cut: cut at most once per round trip.
        last_cut_ns: Option<u64>,
    },
    Gradient2 {
        config: Gradient2,
        /// The baseline latency, an exponential average.
        long_ns: Option<f64>,
    },
}

impl Learner {
    /// The new limit (before clamping) after `sample`, from `limit`.
    pub(crate) fn learn(&mut self, sample: Sample, limit: f64) -> f64 {
        match self {
            Learner::Aimd {
                config,
                last_cut_ns,
            } => {
                let overloaded = sample.dropped || sample.latency > config.latency_threshold;
                if overloaded {
                    let latency_ns = sample.latency.as_nanos() as u64;
                    let since_cut = last_cut_ns.map(|t| sample.now_ns.saturating_sub(t));
                    if since_cut.is_none_or(|d| d >= latency_ns) {
                        *last_cut_ns = Some(sample.now_ns);
                        return limit * config.backoff;
                    }
                    limit
                } else if sample.in_flight as f64 * 2.0 >= limit {
                    limit + 1.0
                } else {
                    limit
                }
            }
            Learner::Gradient2 { config, long_ns } => {
                let short = (sample.latency.as_nanos() as f64).max(1.0);
                let long = match *long_ns {
                    None => short,
                    Some(long) => {
                        let alpha = 2.0 / (f64::from(config.long_window) + 1.0);
                        long + (short - long) * alpha
                    }
                };
                // The baseline drifted above what calls take now: the
                // upstream recovered; let the baseline come down faster.
                let long = if long / short > 2.0 {
                    long * 0.95
                } else {
                    long
                };
                *long_ns = Some(long);
                // Too few calls to tell anything about the upstream's limit.
                if !sample.dropped && (sample.in_flight as f64) < limit / 2.0 {
                    return limit;
                }
                let gradient = if sample.dropped {
                    0.5
                } else {
                    (config.tolerance * long / short).clamp(0.5, 1.0)
                };
                let target = limit * gradient + config.queue_size;
                limit * (1.0 - config.smoothing) + target * config.smoothing
            }
        }
    }
}
