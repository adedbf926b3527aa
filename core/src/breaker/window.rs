//! The sliding windows a closed breaker judges its calls by.
//!
//! Both windows allocate once, when the breaker is built, and never again:
//! recording a call only bumps counters, so a breaker under any load uses
//! constant memory.
//!
//! - [`Count`]: the last `size` calls, kept as a ring of one byte per call,
//!   with running totals updated as a call enters and the oldest leaves.
//! - [`Time`]: the calls of the last `length`, kept in a fixed number of
//!   buckets of `length / buckets` each. A bucket is stamped with the number
//!   of its period since the clock's origin (its epoch); a bucket whose epoch
//!   is too old is treated as empty and reused in place.

use std::time::Duration;

use crate::runtime::Instant;

/// What one call did, as the windows see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) failed: bool,
    pub(crate) slow: bool,
}

/// Totals over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Totals {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

impl Totals {
    fn add(&mut self, mark: Mark) {
        self.calls += 1;
        self.failures += u32::from(mark.failed);
        self.slow += u32::from(mark.slow);
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
        if self.filled == self.ring.len() {
            let old = self.ring[self.next];
            self.totals.calls -= 1;
            self.totals.failures -= u32::from(old & FAILED != 0);
            self.totals.slow -= u32::from(old & SLOW != 0);
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
        let nanos = u64::try_from(length.as_nanos()).unwrap_or(u64::MAX);
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

    fn epoch(&self, now: Instant) -> u64 {
        let nanos = u64::try_from(now.since_origin().as_nanos()).unwrap_or(u64::MAX);
        nanos / self.bucket_nanos
    }

    fn record(&mut self, mark: Mark, now: Instant) {
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
        bucket.totals.add(mark);
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
    fn clearing_a_window_empties_it() {
        let mut w = Window::new(WindowKind::Count(2));
        w.record(BAD, at(0));
        w.clear();
        assert_eq!(w.totals(at(0)), Totals::default());
    }
}
