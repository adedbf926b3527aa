//! The sliding windows a closed breaker judges its calls by.
//!
//! Both windows allocate once, when the breaker is built, and never again:
//! recording a call only bumps counters, so a breaker under any load uses
//! constant memory. Their size is bounded when the breaker is built
//! ([`MAX_COUNT_WINDOW`] calls, [`MAX_BUCKETS`] buckets), so that allocation
//! is at most a megabyte on every target, wasm32 included.
//!
//! Counters are `u64`: a time window at a billion calls a second would take
//! 584 years to overflow one, so no valid configuration can.
//!
//! - [`Count`]: the last `size` calls, kept as a ring of one byte per call,
//!   with running totals updated as a call enters and the oldest leaves.
//! - [`Time`]: the calls of the last `length`, kept in a fixed number of
//!   buckets of `length / buckets` each. A bucket is stamped with the number
//!   of its period since the clock's origin (its epoch); a bucket whose epoch
//!   is too old is treated as empty and reused in place.

use std::time::Duration;

use crate::nanos::saturating_nanos;
use crate::runtime::Instant;

/// What one call did, as the windows see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) failed: bool,
    pub(crate) slow: bool,
}

/// Most calls a count window may hold (one byte each: 1 MiB).
pub(crate) const MAX_COUNT_WINDOW: u32 = 1 << 20;
/// Most buckets a time window may have (each costs 32 bytes).
pub(crate) const MAX_BUCKETS: u32 = 1000;

/// Totals over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Totals {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

impl Totals {
    fn add(&mut self, mark: Mark) {
        self.calls += 1;
        self.failures += u64::from(mark.failed);
        self.slow += u64::from(mark.slow);
    }
}

/// The window kinds a breaker may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WindowKind {
    /// The last `size` calls.
    Count(u32),
    /// The calls of the last `length`, in `buckets` buckets.
    Time { length: Duration, buckets: u32 },
}

impl WindowKind {
    /// Whether outcomes are kept by time (and so need the clock).
    #[inline]
    pub(crate) fn is_timed(self) -> bool {
        matches!(self, WindowKind::Time { .. })
    }
}

/// A sliding window of either kind.
#[derive(Debug)]
pub(crate) enum Window {
    Count(Count),
    Time(Time),
}

impl Window {
    pub(crate) fn new(kind: WindowKind) -> Window {
        match kind {
            WindowKind::Count(size) => Window::Count(Count::new(size)),
            WindowKind::Time { length, buckets } => Window::Time(Time::new(length, buckets)),
        }
    }

    pub(crate) fn record(&mut self, mark: Mark, now: Instant) {
        match self {
            Window::Count(w) => w.record(mark),
            Window::Time(w) => w.record(mark, now),
        }
    }

    /// Records `n` plain successes at `now`, in at most O(window size)
    /// steps whatever `n` is: a count window forgets all but its last
    /// `size` calls anyway, and a time window adds them to one bucket.
    pub(crate) fn record_successes(&mut self, n: u64, now: Instant) {
        const OK: Mark = Mark {
            failed: false,
            slow: false,
        };
        match self {
            Window::Count(w) => {
                // Past `size` successes the ring holds nothing else: only
                // the last `size` of them can still be seen.
                let keep = n.min(w.ring.len() as u64);
                for _ in 0..keep {
                    w.record(OK);
                }
            }
            Window::Time(w) => w.add(
                Totals {
                    calls: n,
                    failures: 0,
                    slow: 0,
                },
                now,
            ),
        }
    }

    pub(crate) fn totals(&self, now: Instant) -> Totals {
        match self {
            Window::Count(w) => w.totals,
            Window::Time(w) => w.totals(now),
        }
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Window::Count(w) => w.clear(),
            Window::Time(w) => w.clear(),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Calls written into count windows on this thread: the unit of work
    /// the scaling tests count.
    pub(crate) static RING_WRITES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

const FAILED: u8 = 1;
const SLOW: u8 = 2;

/// The last `ring.len()` calls.
#[derive(Debug)]
pub(crate) struct Count {
    ring: Box<[u8]>,
    /// Where the next call goes.
    next: usize,
    /// How many slots hold a call (up to `ring.len()`).
    filled: usize,
    totals: Totals,
}

impl Count {
    fn new(size: u32) -> Count {
        Count {
            ring: vec![0; size as usize].into_boxed_slice(),
            next: 0,
            filled: 0,
            totals: Totals::default(),
        }
    }

    fn record(&mut self, mark: Mark) {
        #[cfg(test)]
        RING_WRITES.with(|n| n.set(n.get() + 1));
        if self.filled == self.ring.len() {
            let old = self.ring[self.next];
            self.totals.calls -= 1;
            self.totals.failures -= u64::from(old & FAILED != 0);
            self.totals.slow -= u64::from(old & SLOW != 0);
        } else {
            self.filled += 1;
        }
        self.ring[self.next] = (u8::from(mark.failed) * FAILED) | (u8::from(mark.slow) * SLOW);
        self.totals.add(mark);
        self.next += 1;
        if self.next == self.ring.len() {
            self.next = 0;
        }
    }

    fn clear(&mut self) {
        self.next = 0;
        self.filled = 0;
        self.totals = Totals::default();
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    epoch: u64,
    totals: Totals,
}

/// The calls of the last `bucket_nanos × buckets.len()` nanoseconds.
#[derive(Debug)]
pub(crate) struct Time {
    buckets: Box<[Bucket]>,
    bucket_nanos: u64,
    /// The slot of the bucket last written (saves a division per call).
    last_slot: usize,
}

impl Time {
    fn new(length: Duration, buckets: u32) -> Time {
        let nanos = saturating_nanos(length);
        Time {
            // Epoch 0 would look current at the origin; `u64::MAX` never does.
            buckets: vec![
                Bucket {
                    epoch: u64::MAX,
                    totals: Totals::default()
                };
                buckets as usize
            ]
            .into_boxed_slice(),
            bucket_nanos: (nanos / u64::from(buckets)).max(1),
            last_slot: 0,
        }
    }

    /// How long one bucket lasts.
    pub(crate) fn bucket_length(&self) -> Duration {
        Duration::from_nanos(self.bucket_nanos)
    }

    fn epoch(&self, now: Instant) -> u64 {
        let nanos = saturating_nanos(now.since_origin());
        nanos / self.bucket_nanos
    }

    fn record(&mut self, mark: Mark, now: Instant) {
        self.bucket(now).totals.add(mark);
    }

    fn add(&mut self, more: Totals, now: Instant) {
        let totals = &mut self.bucket(now).totals;
        totals.calls += more.calls;
        totals.failures += more.failures;
        totals.slow += more.slow;
    }

    /// The bucket for `now`, emptied first if it held an older period.
    fn bucket(&mut self, now: Instant) -> &mut Bucket {
        let epoch = self.epoch(now);
        if self.buckets[self.last_slot].epoch != epoch {
            self.last_slot = (epoch % self.buckets.len() as u64) as usize;
        }
        let bucket = &mut self.buckets[self.last_slot];
        if bucket.epoch != epoch {
            *bucket = Bucket {
                epoch,
                totals: Totals::default(),
            };
        }
        bucket
    }

    fn totals(&self, now: Instant) -> Totals {
        let epoch = self.epoch(now);
        let len = self.buckets.len() as u64;
        let mut sum = Totals::default();
        for b in self.buckets.iter() {
            // Current when it lies in (epoch - len, epoch].
            if b.epoch <= epoch && epoch - b.epoch < len {
                sum.calls += b.totals.calls;
                sum.failures += b.totals.failures;
                sum.slow += b.totals.slow;
            }
        }
        sum
    }

    fn clear(&mut self) {
        for b in self.buckets.iter_mut() {
            b.epoch = u64::MAX;
            b.totals = Totals::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Mark = Mark {
        failed: false,
        slow: false,
    };
    const BAD: Mark = Mark {
        failed: true,
        slow: true,
    };

    fn at(ms: u64) -> Instant {
        Instant::from_origin(Duration::from_millis(ms))
    }

    #[test]
    fn a_count_window_forgets_the_oldest_call_when_full() {
        let mut w = Window::new(WindowKind::Count(3));
        for m in [BAD, OK, OK, OK] {
            w.record(m, at(0));
        }
        assert_eq!(
            w.totals(at(0)),
            Totals {
                calls: 3,
                failures: 0,
                slow: 0
            }
        );
        w.record(BAD, at(0));
        assert_eq!(w.totals(at(0)).failures, 1);
    }

    #[test]
    fn a_time_window_forgets_calls_older_than_its_length() {
        let mut w = Window::new(WindowKind::Time {
            length: Duration::from_secs(1),
            buckets: 10,
        });
        w.record(BAD, at(0));
        w.record(OK, at(950));
        assert_eq!(w.totals(at(999)).calls, 2);
        assert_eq!(w.totals(at(1000)).calls, 1);
        assert_eq!(w.totals(at(1000)).failures, 0);
        assert_eq!(w.totals(at(5000)).calls, 0);
        // A bucket is reused in place after a full turn.
        w.record(OK, at(5000));
        assert_eq!(w.totals(at(5000)).calls, 1);
    }

    #[test]
    fn folding_any_backlog_of_successes_costs_at_most_the_window_size() {
        let mut w = Window::new(WindowKind::Count(100));
        w.record(BAD, at(0));
        let before = RING_WRITES.with(std::cell::Cell::get);
        w.record_successes(u64::from(u32::MAX), at(0));
        let writes = RING_WRITES.with(std::cell::Cell::get) - before;
        assert_eq!(writes, 100, "one write per slot, not per success");
        assert_eq!(
            w.totals(at(0)),
            Totals {
                calls: 100,
                failures: 0,
                slow: 0
            }
        );
        // Fewer successes than slots: each is written, the failure stays.
        let mut w = Window::new(WindowKind::Count(100));
        w.record(BAD, at(0));
        w.record_successes(10, at(0));
        assert_eq!((w.totals(at(0)).calls, w.totals(at(0)).failures), (11, 1));
    }

    #[test]
    fn a_time_window_counts_past_u32_max_without_overflowing() {
        let mut w = Window::new(WindowKind::Time {
            length: Duration::from_secs(3600),
            buckets: 1,
        });
        let many = u64::from(u32::MAX) + 10;
        w.record_successes(many, at(0));
        w.record(BAD, at(1));
        let t = w.totals(at(2));
        assert_eq!((t.calls, t.failures, t.slow), (many + 1, 1, 1));
    }

    #[test]
    fn clearing_a_window_empties_it() {
        let mut w = Window::new(WindowKind::Count(2));
        w.record(BAD, at(0));
        w.clear();
        assert_eq!(w.totals(at(0)), Totals::default());
    }
}
