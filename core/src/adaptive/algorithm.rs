//! The two ways a [`ConcurrencyLimit`](super::ConcurrencyLimit) learns: AIMD
//! and Gradient2, after Netflix's concurrency-limits.

use std::time::Duration;

use crate::ConfigError;
use crate::nanos::saturating_nanos;

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

/// Additive increase, multiplicative decrease: once per round trip, the
/// limit grows by one if it was in use (at least half of it taken) and
/// shrinks by a factor if a call was dropped or calls took longer than the
/// latency threshold on average.
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

/// Gradient2: once per round trip, compares the calls' mean latency with a
/// slow-moving average of past round trips; when calls get slower than `tolerance` times the
/// average, the upstream is queueing and the limit shrinks in proportion;
/// otherwise it grows toward `queue_size` above itself. A round trip with
/// a drop moves the limit toward half of itself (no headroom added), so
/// sustained drops take it down to `min_limit`.
///
/// Defaults, and why (Netflix's, which have run at scale): `tolerance` 1.5
/// (latency may rise 50 % before the limit shrinks: normal jitter must not
/// look like overload), `smoothing` 0.2 (each update moves the limit a fifth
/// of the way, so one odd round trip cannot swing it), `long_window` 600
/// round trips (the baseline moves slowly, so sustained queueing is
/// noticed before it becomes the new normal), `queue_size` 4 (the headroom probed for above
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
    /// How many round trips the baseline latency averages over (at least 1).
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
                    return Err(ConfigError::new(
                        "long_window",
                        "must be at least 1 round trip",
                    ));
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
        Learner::new(self)
    }
}

/// An algorithm with its running state. Samples are gathered into windows
/// of about one round trip (until the shortest latency seen in the window
/// has passed since it opened) and the limit moves once per window, as in
/// Netflix's windowed limits: per-sample updates would move the limit by
/// as many steps per round trip as there are calls, so the step size would
/// scale with the limit itself.
#[derive(Debug)]
pub(crate) struct Learner {
    kind: Kind,
    window: Window,
}

#[derive(Debug)]
enum Kind {
    Aimd(Aimd),
    Gradient2 {
        config: Gradient2,
        /// The baseline latency, an exponential average over windows.
        long_ns: Option<f64>,
    },
}

#[derive(Debug, Default)]
struct Window {
    opened_ns: Option<u64>,
    samples: u32,
    latency_sum_ns: f64,
    min_latency_ns: u64,
    max_in_flight: usize,
    dropped: bool,
}

/// One window's samples, summed up.
struct Summary {
    mean_latency_ns: f64,
    max_in_flight: usize,
    dropped: bool,
}

impl Window {
    /// Adds `sample`; the window's summary once it spans a round trip.
    fn add(&mut self, sample: Sample) -> Option<Summary> {
        let latency_ns = saturating_nanos(sample.latency);
        let opened = *self.opened_ns.get_or_insert(sample.now_ns);
        self.min_latency_ns = if self.samples == 0 {
            latency_ns
        } else {
            self.min_latency_ns.min(latency_ns)
        };
        // Saturates: a clock that never moves keeps one window open for ever.
        self.samples = self.samples.saturating_add(1);
        self.latency_sum_ns += latency_ns as f64;
        self.max_in_flight = self.max_in_flight.max(sample.in_flight);
        self.dropped |= sample.dropped;
        if sample.now_ns.saturating_sub(opened) < self.min_latency_ns {
            return None;
        }
        let summary = Summary {
            mean_latency_ns: self.latency_sum_ns / f64::from(self.samples),
            max_in_flight: self.max_in_flight,
            dropped: self.dropped,
        };
        *self = Window::default();
        Some(summary)
    }
}

impl Learner {
    pub(crate) fn new(algorithm: Algorithm) -> Learner {
        let kind = match algorithm {
            Algorithm::Aimd(a) => Kind::Aimd(a),
            Algorithm::Gradient2(g) => Kind::Gradient2 {
                config: g,
                long_ns: None,
            },
        };
        Learner {
            kind,
            window: Window::default(),
        }
    }

    /// The new limit (before clamping) after `sample`, from `limit`.
    pub(crate) fn learn(&mut self, sample: Sample, limit: f64) -> f64 {
        let Some(w) = self.window.add(sample) else {
            return limit;
        };
        let in_use = w.max_in_flight as f64 * 2.0 >= limit;
        match &mut self.kind {
            Kind::Aimd(config) => {
                let slow = w.mean_latency_ns > saturating_nanos(config.latency_threshold) as f64;
                if w.dropped || slow {
                    limit * config.backoff
                } else if in_use {
                    limit + 1.0
                } else {
                    limit
                }
            }
            Kind::Gradient2 { config, long_ns } => {
                let short = w.mean_latency_ns.max(1.0);
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
                if !w.dropped && !in_use {
                    return limit;
                }
                // A drop halves the target without the queue headroom: with
                // it, endless drops settled at `2 × queue_size` (8 by
                // default) whatever `min_limit` said, since `L/2 + q`
                // stops shrinking there.
                let target = if w.dropped {
                    limit * 0.5
                } else {
                    let gradient = (config.tolerance * long / short).clamp(0.5, 1.0);
                    limit * gradient + config.queue_size
                };
                limit * (1.0 - config.smoothing) + target * config.smoothing
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window whose clock never reaches its first latency stays open;
    /// its count saturates instead of wrapping to zero (which would divide
    /// the latency sum by zero when it closes).
    #[test]
    fn a_window_that_never_closes_saturates_its_sample_count() {
        let mut window = Window {
            opened_ns: Some(0),
            samples: u32::MAX - 1,
            min_latency_ns: 1_000_000,
            ..Window::default()
        };
        let sample = |now_ns| Sample {
            latency: Duration::from_millis(1),
            in_flight: 1,
            dropped: false,
            now_ns,
        };
        assert!(window.add(sample(0)).is_none());
        assert!(window.add(sample(0)).is_none());
        assert_eq!(window.samples, u32::MAX);
        let summary = window.add(sample(2_000_000)).expect("a round trip passed");
        assert!(summary.mean_latency_ns.is_finite());
    }
}
