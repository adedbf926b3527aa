//! The generic cell rate algorithm (GCRA) and the seam its state sits behind.
//!
//! # The algorithm
//!
//! A limiter admitting `count` calls per `period` with a burst of `burst`
//! spaces calls one *emission interval* `T = period / count` apart (rounded
//! up to a whole nanosecond, so rounding can only make it stricter) and
//! tolerates up to `burst` calls at once. Its whole state is one number, the
//! *theoretical arrival time* (TAT): when the limiter would be idle again if
//! every admitted call had arrived exactly on schedule.
//!
//! A call of cost `n` at time `now` would move the TAT to
//! `max(TAT, now) + n·T`; it is admitted when that new TAT lies at most
//! `burst·T` after `now`, and otherwise refused with the wait
//! `new TAT - burst·T - now`, after which it would be admitted.
//!
//! # Invariants
//!
//! 1. Times are nanoseconds since the Unix epoch (an absolute base), so two
//!    processes, or two limiters built at different times, that share one
//!    TAT agree on what it means.
//! 2. A TAT at or before `now` means exactly the same as a fresh state: such
//!    a state can be forgotten (the keyed limiter's eviction relies on it).
//! 3. Every admission adds at least `T` to the TAT and leaves it at most
//!    `burst·T` after its own `now`. Whatever order the updates land in, in
//!    any window of length `W` at most `W / T + burst` calls are admitted
//!    (the first admitted in the window leaves TAT ≥ its `now + T`, the last
//!    leaves TAT ≤ its `now + burst·T`, and each adds `T`).
//! 4. State changes only through [`RateStore::compare_exchange`], so two
//!    racing callers never both spend the same capacity (no lost update).

use crate::runtime::{MaybeSend, MaybeSync};
use crate::sync::{AtomicU64, Ordering};

/// The limiter's arithmetic: emission interval and burst, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// `T`: nanoseconds between two calls at the steady rate.
    pub(crate) emission_ns: u64,
    /// How many calls may come at once.
    pub(crate) burst: u32,
    /// `burst · T`.
    pub(crate) span_ns: u64,
}

impl Gcra {
    pub(crate) fn new(emission_ns: u64, burst: u32) -> Gcra {
        Gcra {
            emission_ns,
            burst,
            span_ns: emission_ns.saturating_mul(u64::from(burst)),
        }
    }

    /// The latest TAT an admission at `now` may leave: `now + burst·T`,
    /// saturating.
    ///
    /// A call is admitted when `new TAT - burst·T <= now`, which is
    /// `new TAT <= now + burst·T`; with saturating arithmetic too, since a
    /// saturated limit admits every new TAT, as the saturated subtraction
    /// (at most `u64::MAX - burst·T`, below such a `now`) would have.
    #[inline]
    pub(crate) fn limit(&self, now: u64) -> u64 {
        now.saturating_add(self.span_ns)
    }

    /// The TAT after admitting `cost` at `now`, or the nanoseconds to wait,
    /// given `limit` = [`limit(now)`](Self::limit) (worked out by the
    /// caller, once: a compare-and-swap retry does not redo it). The wait is
    /// `new TAT - limit`: a refused call's limit has not saturated, so that
    /// is `new TAT - burst·T - now`.
    #[inline]
    pub(crate) fn decide(&self, tat: u64, now: u64, limit: u64, cost: u32) -> Result<u64, u64> {
        let new_tat = tat
            .max(now)
            .saturating_add(self.emission_ns.saturating_mul(u64::from(cost)));
        if new_tat <= limit {
            Ok(new_tat)
        } else {
            Err(new_tat - limit)
        }
    }
}

/// Where a [`RateLimiter`](super::RateLimiter) keeps its one state value,
/// the theoretical arrival time (TAT): nanoseconds since the Unix epoch, 0
/// for a fresh limiter.
///
/// In memory it is an [`AtomicU64`](std::sync::atomic::AtomicU64), the
/// default, used without dynamic dispatch. Another store (a word in memory
/// shared by the processes of one host, say) plugs in through
/// [`RateLimiterBuilder::build_with_store`](super::RateLimiterBuilder::build_with_store):
/// the limiter reads the TAT, decides on its own clock, and writes the new
/// TAT only if nobody changed it meanwhile, retrying with the value that
/// won. So the store needs two operations, and every admission is counted
/// exactly once however callers race.
///
/// A store that must decide on its own clock in one step, such as Redis
/// (where a compare-and-swap would cost two round trips and trust each
/// client's clock), does not fit this seam: staunch-redis's
/// `RedisRateLimiter` runs the same algorithm as one Lua script on the
/// server's `TIME`.
pub trait RateStore: MaybeSend + MaybeSync {
    /// The current TAT (0 for a fresh limiter). Must see every write that
    /// happened before it (acquire ordering, for an atomic).
    fn load(&self) -> u64;
    /// Replaces `current` with `new` if the TAT is still `current`, or
    /// returns the value found instead. May fail spuriously (the limiter
    /// retries with the value returned).
    ///
    /// # Errors
    ///
    /// The TAT found, when it was not `current`.
    fn compare_exchange(&self, current: u64, new: u64) -> Result<(), u64>;
}

impl RateStore for AtomicU64 {
    #[inline]
    fn load(&self) -> u64 {
        AtomicU64::load(self, Ordering::Acquire)
    }
    #[inline]
    fn compare_exchange(&self, current: u64, new: u64) -> Result<(), u64> {
        AtomicU64::compare_exchange_weak(self, current, new, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
    }
}

/// Admits `cost` at `now` against `store`, retrying on a lost race with the
/// value that won, so every admission is counted exactly once.
#[inline]
pub(crate) fn admit<S: RateStore + ?Sized>(
    store: &S,
    gcra: &Gcra,
    now: u64,
    cost: u32,
) -> Result<(), u64> {
    let limit = gcra.limit(now);
    let mut tat = store.load();
    loop {
        let new_tat = gcra.decide(tat, now, limit, cost)?;
        match store.compare_exchange(tat, new_tat) {
            Ok(()) => return Ok(()),
            Err(actual) => tat = actual,
        }
    }
}
