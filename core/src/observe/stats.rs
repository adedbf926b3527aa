//! Per-operation statistics in constant memory.
//!
//! Count, successes, failures, min, max, mean and standard deviation are
//! exact (Welford's online algorithm). Median and p99 come from a
//! log-linear histogram: 16 sub-buckets per power of two of nanoseconds, so
//! a reported quantile is within 1/16 (6.25 %) above the true value, and
//! memory stays fixed however many calls are recorded.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::runtime::Timer;

const SUB_BUCKETS: usize = 16;
const BUCKETS: usize = 64 * SUB_BUCKETS;

/// Records how an operation went, call by call. Cheap to clone (shared).
///
/// ```
/// use staunch::observe::Stats;
/// use std::time::Duration;
///
/// let stats = Stats::new();
/// for ms in [10, 20, 30, 40] {
///     stats.record(true, Duration::from_millis(ms));
/// }
/// stats.record(false, Duration::from_millis(100));
/// let s = stats.summary();
/// assert_eq!((s.count, s.successes, s.failures), (5, 4, 1));
/// assert_eq!(s.min, Duration::from_millis(10));
/// assert_eq!(s.max, Duration::from_millis(100));
/// assert_eq!(s.mean, Duration::from_millis(40));
/// ```
#[derive(Clone, Default)]
pub struct Stats(Arc<Mutex<Recorder>>);

struct Recorder {
    count: u64,
    successes: u64,
    min: Duration,
    max: Duration,
    mean_ns: f64,
    m2: f64,
    histogram: Box<[u64; BUCKETS]>,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder {
            count: 0,
            successes: 0,
            min: Duration::MAX,
            max: Duration::ZERO,
            mean_ns: 0.0,
            m2: 0.0,
            histogram: Box::new([0; BUCKETS]),
        }
    }
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Calls recorded.
    pub count: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed.
    pub failures: u64,
    /// The shortest call (zero when none).
    pub min: Duration,
    /// The longest call.
    pub max: Duration,
    /// The mean duration.
    pub mean: Duration,
    /// The median duration (within 6.25 % above the true value).
    pub median: Duration,
    /// The 99th percentile duration (within 6.25 % above the true value).
    pub p99: Duration,
    /// The standard deviation of the durations (population).
    pub std_dev: Duration,
}

fn bucket_of(ns: u64) -> usize {
    if ns < SUB_BUCKETS as u64 {
        return ns as usize;
    }
    let power = 63 - ns.leading_zeros() as usize; // >= 4
    let shift = power - 4;
    let sub = ((ns >> shift) as usize) & (SUB_BUCKETS - 1);
    ((power - 3) * SUB_BUCKETS + sub).min(BUCKETS - 1)
}

fn bucket_upper_ns(bucket: usize) -> u64 {
    if bucket < SUB_BUCKETS {
        return bucket as u64;
    }
    let power = bucket / SUB_BUCKETS + 3;
    let sub = (bucket % SUB_BUCKETS) as u128;
    let shift = power - 4;
    let upper = ((SUB_BUCKETS as u128 + sub + 1) << shift) - 1;
    u64::try_from(upper).unwrap_or(u64::MAX)
}

impl Stats {
    /// Empty statistics.
    #[must_use]
    pub fn new() -> Stats {
        Stats::default()
    }

    /// Records one call: whether it succeeded and how long it took.
    pub fn record(&self, success: bool, took: Duration) {
        let mut r = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        r.count += 1;
        r.successes += u64::from(success);
        r.min = r.min.min(took);
        r.max = r.max.max(took);
        let ns = crate::nanos::saturating_nanos(took);
        let x = ns as f64;
        let delta = x - r.mean_ns;
        r.mean_ns += delta / r.count as f64;
        r.m2 += delta * (x - r.mean_ns);
        r.histogram[bucket_of(ns)] += 1;
    }

    /// Runs `future`, records its duration on `timer`'s clock and whether it
    /// returned `Ok`, and passes its output through.
    ///
    /// # Cancel safety
    ///
    /// A future dropped before it finishes records nothing.
    pub async fn measure<T: Timer, F, O, E>(&self, timer: &T, future: F) -> Result<O, E>
    where
        F: Future<Output = Result<O, E>>,
    {
        let start = timer.now();
        let out = future.await;
        self.record(out.is_ok(), timer.now() - start);
        out
    }

    /// A snapshot of everything recorded so far.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let r = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let quantile = |q: f64| -> Duration {
            if r.count == 0 {
                return Duration::ZERO;
            }
            let rank = ((q * r.count as f64).ceil() as u64).clamp(1, r.count);
            let mut seen = 0;
            for (bucket, n) in r.histogram.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    let upper = Duration::from_nanos(bucket_upper_ns(bucket));
                    return upper.clamp(r.min, r.max);
                }
            }
            r.max
        };
        let variance = if r.count > 0 {
            r.m2 / r.count as f64
        } else {
            0.0
        };
        Summary {
            count: r.count,
            successes: r.successes,
            failures: r.count - r.successes,
            min: if r.count == 0 { Duration::ZERO } else { r.min },
            max: r.max,
            mean: Duration::from_nanos(r.mean_ns.round() as u64),
            median: quantile(0.5),
            p99: quantile(0.99),
            std_dev: Duration::from_nanos(variance.sqrt().round() as u64),
        }
    }
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.summary().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `measure` times a call on the given clock, records whether it
    /// returned `Ok`, passes its output through, and records nothing for a
    /// call dropped before it finished.
    #[test]
    fn measure_records_each_finished_call_on_the_clock_it_is_given() {
        use crate::runtime::Timer;
        use crate::testing::VirtualRuntime;
        use futures::FutureExt;

        let rt = VirtualRuntime::new();
        let stats = Stats::new();
        let call = |ms: u64, ok: bool| {
            let rt = rt.clone();
            async move {
                rt.sleep(Duration::from_millis(ms)).await;
                if ok { Ok(ms) } else { Err("failed") }
            }
        };
        let outs = rt
            .block_on(async {
                let fast = stats.measure(&rt, call(30, true)).await;
                let slow = stats.measure(&rt, call(10, false)).await;
                (fast, slow)
            })
            .unwrap();
        assert_eq!(outs, (Ok(30), Err("failed")));
        // Polled once and dropped mid-way: not a call that finished.
        assert!(stats.measure(&rt, call(50, true)).now_or_never().is_none());
        let s = stats.summary();
        assert_eq!((s.count, s.successes, s.failures), (2, 1, 1));
        assert_eq!(
            (s.min, s.max),
            (Duration::from_millis(10), Duration::from_millis(30))
        );
        assert_eq!(s.mean, Duration::from_millis(20));
    }

    #[test]
    fn empty_stats_report_zeros_not_garbage() {
        let s = Stats::new().summary();
        assert_eq!(s.count, 0);
        assert_eq!(s.min, Duration::ZERO);
        assert_eq!(s.median, Duration::ZERO);
    }

    #[test]
    fn quantiles_are_within_a_sixteenth_above_the_true_value() {
        let stats = Stats::new();
        for ms in 1..=1000u64 {
            stats.record(true, Duration::from_millis(ms));
        }
        let s = stats.summary();
        let within = |got: Duration, want: Duration| {
            got >= want && got.as_secs_f64() <= want.as_secs_f64() * (1.0 + 1.0 / 16.0)
        };
        assert!(
            within(s.median, Duration::from_millis(500)),
            "{:?}",
            s.median
        );
        assert!(within(s.p99, Duration::from_millis(990)), "{:?}", s.p99);
        assert_eq!(s.mean, Duration::from_micros(500_500));
        // Population standard deviation of 1..=1000 ms is ~288.675 ms.
        assert!(
            (s.std_dev.as_secs_f64() - 0.288_675).abs() < 1e-3,
            "{:?}",
            s.std_dev
        );
    }

    #[test]
    fn every_bucket_upper_bound_is_at_least_its_values() {
        for ns in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            1000,
            123_456_789,
            u64::MAX / 3,
            u64::MAX,
        ] {
            assert!(bucket_upper_ns(bucket_of(ns)) >= ns, "{ns}");
        }
    }
}
